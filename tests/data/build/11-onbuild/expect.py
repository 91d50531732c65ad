assert "OnBuild" not in c["config"] or not c["config"]["OnBuild"], c["config"]
assert c["config"]["Labels"] == {"base": "yes"}
assert len(c["rootfs"]["diff_ids"]) == 4
