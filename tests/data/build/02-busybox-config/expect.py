cc = c["config"]
assert cc["Labels"] == {"org.example.name": "config case", "version": "1"}, cc.get("Labels")
assert "A=1" in cc["Env"] and "B=two words" in cc["Env"], cc["Env"]
assert "PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in cc["Env"], cc["Env"]
assert cc["WorkingDir"] == "/app"
assert cc["User"] == "1000:1000"
assert cc["Cmd"] == ["sh", "-c", "cat /app/env.txt"]
assert cc["Shell"] == ["/bin/sh", "-e", "-c"]
assert cc["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}, cc.get("ExposedPorts")
assert cc["Volumes"] == {"/data": {}}
assert cc["StopSignal"] == "SIGTERM"
hc = cc["Healthcheck"]
assert hc["Test"] == ["CMD-SHELL", "wget -q -O- http://localhost:8080/ || exit 1"], hc
assert hc["Interval"] == 30 * 10**9 and hc["Timeout"] == 5 * 10**9 and hc["Retries"] == 2, hc
assert cc["OnBuild"] == ["RUN echo triggered"], cc.get("OnBuild")
assert c["author"] == "someone@example.com"
assert len(c["rootfs"]["diff_ids"]) == 4, c["rootfs"]  # busybox, WORKDIR, 2 RUN
runs = [h for h in c["history"] if h["created_by"].startswith("RUN")]
assert runs[0]["created_by"].startswith("RUN /bin/sh -c echo"), runs
assert runs[1]["created_by"].startswith("RUN /bin/sh -e -c echo shell"), runs
env = [h for h in c["history"] if h["created_by"].startswith("ENV A=1")]
assert env and env[0]["empty_layer"] is True, c["history"]
