assert c["config"]["WorkingDir"] == "/w"
