"""`labkit serve`: Voilà on a lab's dashboards, the URL printed, the lab passed by environment, the
read_only setting, and the sign-in a public host needs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import labkit
from labkit.config import ConfigError, load_settings
from labkit.dashboards.serve import (SIGN_IN_AUTHORIZER, SIGN_IN_PROVIDER, api_command, check_host, page_settings,
                                     voila_command)

pytestmark = pytest.mark.timeout(300)


def test_read_only_comes_from_the_environment_or_the_lab_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(tmp_path).read_only is False
    monkeypatch.setenv("LABKIT_READ_ONLY", "yes")
    assert load_settings(tmp_path).read_only is True
    monkeypatch.setenv("LABKIT_READ_ONLY", "perhaps")
    with pytest.raises(ConfigError, match="read_only"):
        load_settings(tmp_path)
    monkeypatch.delenv("LABKIT_READ_ONLY")
    (tmp_path / "labkit.toml").write_text("[labkit]\nread_only = true\n")
    assert load_settings(tmp_path).read_only is True


def test_voila_command_preheats_a_kernel_pool_per_page() -> None:
    command = voila_command(9999)
    assert command[:3] == [sys.executable, "-m", "voila"] and Path(command[3]).name == "dashboards"
    assert "--preheat_kernel=True" in command and "--pool_size=1" in command and "--port=9999" in command
    assert not any("preheat" in part for part in voila_command(9999, preheat=False))


def test_labkit_serve_prints_the_url_and_serves_the_pages_and_the_api(tmp_path: Path) -> None:
    labkit.Lab.open(tmp_path / "lab").close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
    # started with SIGINT ignored, as a shell's background job is: Ctrl-C must still stop it
    process = subprocess.Popen([sys.executable, "-m", "labkit", "--lab", str(tmp_path / "lab"), "serve", "--port", "0",
                                "--pool-size", "0", "--read-only", "--api"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        line = process.stdout.readline()
        assert "(read-only)" in line and "/voila/render/home.ipynb" in line, line
        url = line.split(": ", 1)[1].strip()
        with urllib.request.urlopen(url, timeout=120) as response:
            page = response.read().decode()
        assert response.status == 200
        assert "application/vnd.jupyter.widget-view+json" in page  # the page's widget was displayed
        assert "Traceback" not in page and "LabkitError" not in page

        api_line = process.stdout.readline()  # "REST API: <url> (Jupyter token <token>); see docs/api.md"
        assert api_line.startswith("REST API: "), api_line
        api_url = api_line.split()[2]
        token = api_line.split("Jupyter token ", 1)[1].split(")", 1)[0]
        request = urllib.request.Request(f"{api_url}/models", headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200 and b'"items"' in response.read()
        rebound = urllib.request.Request(url, headers={"Host": "attacker.example"})  # DNS rebinding
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound, timeout=60)
        assert refused.value.code == 403
        server_root = api_url.split("/labkit/")[0]
        for path in ("/voila/api/contents/", "/voila/render/labkit.toml", "/api/terminals"):
            closed = urllib.request.Request(server_root + path, headers={"Authorization": f"token {token}"})
            with pytest.raises(urllib.error.HTTPError) as missing:  # only labkit's extension ...
                urllib.request.urlopen(closed, timeout=60)
            assert missing.value.code == 404, path
        listing = urllib.request.Request(server_root + "/api/contents", headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(listing, timeout=60) as response:  # ... on an empty root, not the lab folder
            assert json.loads(response.read())["content"] == []
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=90)  # it stops two servers, each allowed 20 s; more on a loaded machine
        except subprocess.TimeoutExpired:
            process.kill()
    time.sleep(0.5)
    for stopped in (url, f"{api_url}/openapi.json"):  # Ctrl-C stops both servers
        with pytest.raises(OSError):
            urllib.request.urlopen(stopped, timeout=5)


def test_a_read_only_site_acts_as_the_public_visitor_unless_told_otherwise(tmp_path: Path, models_dir: Path) -> None:
    from labkit.access import PUBLIC_VISITOR
    from labkit.queue.embedded import settings_environment

    with labkit.Lab.open(tmp_path / "lab") as lab:
        lab.add_model(models_dir / "hodgkin_huxley_squid_axon_model_1952_modified.cellml", name="private_hh")
        public = page_settings(load_settings(tmp_path / "lab", read_only=True))
        assert public.user == PUBLIC_VISITOR
        assert settings_environment(public)["LABKIT_USER"] == PUBLIC_VISITOR  # what Voilà's kernels get
        assert lab.as_user(public.user).names("model") == []  # so the site shows no private model
        assert page_settings(lab.settings).user == lab.settings.user  # a working site acts as its operator
        assert page_settings(load_settings(tmp_path / "lab", read_only=True), "alice").user == "alice"


def test_serve_refuses_a_public_host_without_sign_in_or_read_only(tmp_path: Path) -> None:
    lab_dir = tmp_path / "lab"
    labkit.Lab.open(lab_dir).close()
    env = {**os.environ, "LABKIT_SIGN_IN": "0", "LABKIT_READ_ONLY": "0"}
    refused = subprocess.run([sys.executable, "-m", "labkit", "--lab", str(lab_dir), "serve", "--host", "0.0.0.0",
                              "--port", "0"], capture_output=True, text=True, env=env, timeout=120)
    assert refused.returncode == 1 and "refusing to serve on 0.0.0.0" in refused.stderr
    assert "sign_in = true" in refused.stderr and "--read-only" in refused.stderr
    assert not (lab_dir / "logs" / "dashboards.log").exists()  # nothing was started
    for allowed in ({"sign_in": True}, {"read_only": True}):
        check_host("0.0.0.0", load_settings(lab_dir, **allowed))
    check_host("127.0.0.1", load_settings(lab_dir))
    with pytest.raises(PermissionError):
        check_host("192.168.1.10", load_settings(lab_dir))


def test_page_kernels_of_closed_pages_are_culled_and_loopback_answers_only_local_names() -> None:
    command = voila_command(9999)
    assert "--MappingKernelManager.cull_idle_timeout=600" in command
    assert "--Voila.tornado_settings={'allow_remote_access': False}" in command
    assert not any("allow_remote_access" in part for part in voila_command(9999, host="0.0.0.0"))


def test_with_sign_in_both_servers_use_labkits_identity_provider(tmp_path: Path) -> None:
    voila = voila_command(9999, sign_in=True)
    assert f"--Voila.identity_provider_class={SIGN_IN_PROVIDER}" in voila
    assert "--VoilaConfiguration.http_header_envs=Cookie" in voila  # the page learns its visitor's session
    api = api_command(9998, tmp_path, sign_in=True)
    assert f"--ServerApp.identity_provider_class={SIGN_IN_PROVIDER}" in api
    assert f"--ServerApp.authorizer_class={SIGN_IN_AUTHORIZER}" in api
    assert not any("identity_provider" in part for part in voila_command(9999) + api_command(9998, tmp_path))
    assert page_settings(load_settings(tmp_path, sign_in=True)).user == "guest"  # until a session says otherwise
