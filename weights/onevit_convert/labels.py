"""--labels FILE: one class name per line, in class-index order."""

import re

from .errors import ConvertError

# synset_words.txt style: "n01440764 tench, Tinca tinca" → "tench, Tinca tinca".
_SYNSET = re.compile(r"^n\d{8}\s+(.+)$")


def read_labels(path):
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = [line.strip() for line in f.read().splitlines()]
    except OSError as e:
        raise ConvertError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise ConvertError(f"{path}: not UTF-8 text ({e})") from None
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise ConvertError(f"{path}: no labels in the file")
    for number, line in enumerate(lines, 1):
        if not line:
            # An empty line would shift every later name to the wrong class.
            raise ConvertError(f"{path}: line {number} is empty")
    # Only strip synset ids when every line has one: a plain name could start like an id.
    matches = [_SYNSET.match(line) for line in lines]
    if all(matches):
        lines = [m.group(1) for m in matches]
    return lines
