#!/usr/bin/env python3
"""Writes README.md's C++ code blocks, one after another, as a file the readme test includes.

The blocks are compiled from the README itself, so the README cannot drift from what the test
runs. `#include` lines become blank lines: the test includes weft.hpp before the blocks, which
it wraps in a namespace of their own. `#line` directives point compiler errors at README.md.
"""
import sys


def cpp_blocks(text):
    inside = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not inside and line.strip() == "```cpp":
            inside = True
            yield f"#line {number + 1} \"README.md\""
        elif inside and line.strip() == "```":
            inside = False
        elif inside:
            yield "" if line.startswith("#include") else line  # keeps the line numbers
    if inside:
        sys.exit("README.md: a ```cpp block is never closed")


def main():
    readme, output = sys.argv[1], sys.argv[2]
    with open(readme, encoding="utf-8") as f:
        lines = list(cpp_blocks(f.read()))
    if not lines:
        sys.exit("README.md has no ```cpp block")
    with open(output, "w", encoding="utf-8") as f:
        f.write("// Generated from README.md by test/readme_examples.py; do not edit.\n")
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
