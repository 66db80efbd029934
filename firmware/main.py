# Runs the active application slot, or recovery mode when there is no valid app (or the button is held at boot).
import loader.startup

loader.startup.run()
