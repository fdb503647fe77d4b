"""The source folders and what each may include (docs/design.md §1): the layering is checked,
not just described."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(ROOT, "pam_k8stoken")
FOLDERS = ("util", "core", "module", "helper", "tools")
# the folders whose headers each folder may include, besides its own
ALLOWED = {
    "util": set(),
    "core": {"util"},
    "module": {"util", "core"},
    "helper": {"util", "core"},
    "tools": {"util", "core", "module", "helper"},
}
INCLUDE = re.compile(r'^#include "([^"]+)"', re.M)


def headers_by_folder():
    where = {}
    for folder in FOLDERS:
        for name in os.listdir(os.path.join(SRC, folder)):
            if name.endswith(".h"):
                assert name not in where, f"{name} exists in both {where.get(name)}/ and {folder}/"
                where[name] = folder
    return where


def test_sources_live_only_in_the_folders():
    loose = [n for n in os.listdir(SRC) if os.path.isfile(os.path.join(SRC, n))]
    assert loose == [], f"files outside pam_k8stoken/{{{','.join(FOLDERS)}}}/: {loose}"
    assert sorted(d for d in os.listdir(SRC)) == sorted(FOLDERS)


def test_includes_follow_the_layers():
    where = headers_by_folder()
    wrong = []
    for folder in FOLDERS:
        for name in sorted(os.listdir(os.path.join(SRC, folder))):
            if not name.endswith((".c", ".h")):
                continue
            text = open(os.path.join(SRC, folder, name)).read()
            for header in INCLUDE.findall(text):
                home = where.get(header)
                assert home is not None or header.endswith(".c"), \
                    f"{folder}/{name} includes {header}, which is in no source folder"
                if home not in (None, folder) and home not in ALLOWED[folder]:
                    wrong.append(f"{folder}/{name} -> {home}/{header}")
    assert wrong == [], "includes against the layering of docs/design.md §1: " + ", ".join(wrong)


def test_tools_helper_use_is_only_http():
    """tools/ takes only http.h from helper/ (enrolment); the helper program stays its own."""
    where = headers_by_folder()
    used = set()
    for name in os.listdir(os.path.join(SRC, "tools")):
        if name.endswith((".c", ".h")):
            used |= {h for h in INCLUDE.findall(open(os.path.join(SRC, "tools", name)).read())
                     if where.get(h) == "helper"}
    assert used == {"http.h"}
