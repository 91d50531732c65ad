assert not any(e.startswith("VERSION=") for e in c["config"]["Env"])
