from host_tests.firmware.fixtures import make_images


def test_signed_image_fixtures_are_up_to_date():
    for name, data in make_images.fixtures().items():
        assert (make_images.HERE / name).read_bytes() == data, f"stale fixture {name}: run make_images"
