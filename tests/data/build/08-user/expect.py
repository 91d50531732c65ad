assert c["config"]["User"] == "0"
