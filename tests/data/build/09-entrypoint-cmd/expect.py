assert c["config"]["Entrypoint"] == ["/bin/echo"]
assert c["config"].get("Cmd") is None, c["config"]
