"""Log, list and download a run's artifacts on local disk, under ./mlruns.

scripts/demo            # or: python examples/demo.py [ARTIFACT_ROOT]
"""

from __future__ import annotations

import filecmp
import json
import os
import sys
import tempfile
import uuid

from mlartifacts import ArtifactStore


def main() -> None:
    run_id = uuid.uuid4().hex
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join("mlruns", "0", run_id, "artifacts")
    with tempfile.TemporaryDirectory(prefix="mlartifacts-demo-") as work:
        demo(run_id, root, work)


def demo(run_id: str, root: str, work: str) -> None:

    # A model, its metrics and a plots directory, as a training run would produce them.
    with open(os.path.join(work, "model.bin"), "wb") as f:
        f.write(os.urandom(4 * 1024 * 1024))
    with open(os.path.join(work, "metrics.json"), "w") as f:
        json.dump({"accuracy": 0.93, "loss": 0.21}, f)
    plots = os.path.join(work, "plots")
    os.makedirs(plots)
    for name in ("loss.png", "roc.png"):
        with open(os.path.join(plots, name), "wb") as f:
            f.write(os.urandom(20_000))

    with ArtifactStore(root) as store:
        store.log_artifact(os.path.join(work, "model.bin"), "model")
        store.log_artifact(os.path.join(work, "metrics.json"))
        store.log_artifacts(plots, "plots")

        print(f"artifacts of run {run_id} in {root} (plugin {store.plugin!r}):")
        for top in store.list_artifacts():
            for info in store.list_artifacts(top.path) if top.is_dir else [top]:
                size = "DIR" if info.is_dir else f"{info.file_size:,} B"
                print(f"  {info.path:<24} {size:>14}")

        downloaded = store.download_artifacts("plots", os.path.join(work, "downloaded"))
        print(f"downloaded plots/: {sorted(os.listdir(downloaded))}")
        same = filecmp.cmp(
            os.path.join(downloaded, "loss.png"), os.path.join(plots, "loss.png"), shallow=False
        )
        print(f"byte-identical: {same}")


if __name__ == "__main__":
    main()
