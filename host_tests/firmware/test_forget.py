import sys

import loader


def test_a_forgotten_module_leaves_sys_modules_and_its_package_and_imports_again():
    import app
    from app import calibrate

    loader.forget("app.calibrate")
    assert "app.calibrate" not in sys.modules and not hasattr(app, "calibrate")
    from app import calibrate as again  # a later import loads it afresh

    assert again is not calibrate and again.apply is not None
    loader.forget("app.never_imported")  # nothing to take: no error
