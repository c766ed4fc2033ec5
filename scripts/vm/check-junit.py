"""Fails the VM stage when a test that the guest exists for was skipped: anything
cgroup v2 (a `[cgroup2]` parameter, a cgroup2 test) or systemd (tests/vm). Prints
the tally and the skip reasons of everything else."""
from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def must_run(classname: str, name: str) -> bool:
    return "cgroup2" in name or classname.startswith("tests.vm.")


def main(path: str) -> int:
    cases = ET.parse(path).getroot().iter("testcase")
    tally = {"passed": 0, "failed": 0, "skipped": 0}
    wrongly_skipped = []
    for case in cases:
        classname, name = case.get("classname", ""), case.get("name", "")
        if case.find("skipped") is not None:
            tally["skipped"] += 1
            reason = case.find("skipped").get("message", "")
            if must_run(classname, name):
                wrongly_skipped.append(f"{classname}::{name}: {reason}")
        elif case.find("failure") is not None or case.find("error") is not None:
            tally["failed"] += 1
        else:
            tally["passed"] += 1
    print("leeward-vm: junit: " + ", ".join(f"{n} {k}" for k, n in tally.items()))
    for line in wrongly_skipped:
        print(f"leeward-vm: SKIPPED but must run in the guest: {line}")
    return 1 if wrongly_skipped or tally["passed"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
