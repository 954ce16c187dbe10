"""Gives every image of an unpacked `docker save` archive the epoch as its creation time.

    python3 tests/e2e/epoch_images.py DIR

Each image's configuration (`<hex>.json`, named by its sha256) is rewritten with `created`
1970-01-01T00:00:00Z and renamed after its new digest; manifest.json follows. Links to parents
are dropped (their ids change): the loaded images stand alone, as podman's do.
"""

import hashlib
import json
import os
import sys

root = sys.argv[1]
manifest_path = os.path.join(root, "manifest.json")
with open(manifest_path) as f:
    manifest = json.load(f)
for item in manifest:
    old = os.path.join(root, item["Config"])
    with open(old) as f:
        config = json.load(f)
    config["created"] = "1970-01-01T00:00:00Z"
    data = json.dumps(config, separators=(",", ":")).encode()
    name = hashlib.sha256(data).hexdigest() + ".json"
    with open(os.path.join(root, name), "wb") as f:
        f.write(data)
    if name != item["Config"]:
        os.remove(old)
    item["Config"] = name
    item.pop("Parent", None)
with open(manifest_path, "w") as f:
    json.dump(manifest, f)
