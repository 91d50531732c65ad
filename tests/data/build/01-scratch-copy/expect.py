assert len(c["rootfs"]["diff_ids"]) == 4, c["rootfs"]
assert c["os"] == "linux"
assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in c["config"]["Env"]
assert [h["created_by"] for h in c["history"]][0] == "COPY a.txt / # buildkit", c["history"]
assert not any(h.get("empty_layer") for h in c["history"])
