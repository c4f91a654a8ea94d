"""The deployment files: valid Kubernetes objects that agree with the gateway and its image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mcpvisor as mv
from mcpvisor.gateway.command import add_parser
from mcpvisor.gateway.options import parse_options

kubernetes_validate = pytest.importorskip("kubernetes_validate")  # a dev dependency
yaml = pytest.importorskip("yaml")  # comes with it

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"


def manifests() -> dict[str, dict[str, object]]:
    out = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            out[doc["kind"]] = doc
    return out


def test_every_manifest_is_valid_kubernetes() -> None:
    found = manifests()
    assert set(found) == {"ConfigMap", "Secret", "Deployment", "Service"}
    for doc in found.values():
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    listed = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(
        p.name for p in DEPLOY.glob("*.yaml") if p.stem != "kustomization"
    )


def test_the_deployment_matches_the_gateway() -> None:
    found = manifests()
    pod = found["Deployment"]["spec"]["template"]["spec"]  # type: ignore[index]
    container = pod["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert (
        container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    )
    assert pod["securityContext"]["runAsNonRoot"] is True
    # The args parse as `mcpvisor serve`, with a token (a non-loopback bind needs one).
    import argparse

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"), argparse.ArgumentParser(add_help=False))
    args = parser.parse_args(["serve", *container["args"]])
    assert args.http == "0.0.0.0:8080" and args.token_file and not args.insecure
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert Path(args.token_file).parent.as_posix() in mounts
    assert Path(args.config).parent.as_posix() in mounts
    secret = found["Secret"]
    assert Path(args.token_file).name in secret["stringData"]  # type: ignore[operator]


def test_the_configmap_holds_a_config_the_gateway_accepts() -> None:
    text = manifests()["ConfigMap"]["data"]["config.json"]  # type: ignore[index]
    data = json.loads(text)
    spec = mv.load_config(data)
    options = parse_options(data["mcpvisor"]["gateway"], [s.name for s in spec.servers])
    assert options.namespaced(len(spec.servers))


def test_the_image_runs_the_gateway_unprivileged_under_an_init() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    entry = next(line for line in lines if line.startswith("ENTRYPOINT "))
    assert json.loads(entry.removeprefix("ENTRYPOINT ")) == ["tini", "--", "mcpvisor", "serve"]


def test_the_readme_gateway_examples_parse() -> None:
    import re

    text = (ROOT / "README.md").read_text()
    start = text.index("## The gateway: `mcpvisor serve`\n")
    section = text[start : text.index("\n## ", start + 1)]
    blocks = re.findall(r"```json\n(.*?)```", section, re.S)
    options_block, desktop_block = blocks
    options = parse_options(json.loads("{" + options_block + "}")["mcpvisor"]["gateway"], ["files"])
    assert not options.tool_filter("files").permits("read_secrets")
    assert options.tool_filter("files").permits("read_notes")
    entry = json.loads(desktop_block)["mcpServers"]["supervised"]
    assert entry["args"][0] == "serve" and entry["args"][-1] == "--stdio"
    commands = re.findall(r"```sh\n(.*?)```", section, re.S)[0]
    assert "mcpvisor serve config.json --stdio" in commands
