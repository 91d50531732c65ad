assert len(c["rootfs"]["diff_ids"]) == 4
