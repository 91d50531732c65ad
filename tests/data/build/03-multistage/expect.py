assert c["config"]["Entrypoint"] == ["/busybox", "cat", "/result"]
assert "Cmd" not in c["config"] or c["config"]["Cmd"] is None
assert len(c["rootfs"]["diff_ids"]) == 3
