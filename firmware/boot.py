# Stage 0: the first file a board runs. Kept tiny and rarely changed: the loader does the work.
import loader.early

loader.early.run()
