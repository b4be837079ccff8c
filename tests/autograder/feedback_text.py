"""The text a student sees in a feedback HTML file, for the tests that search it."""

from html.parser import HTMLParser
from pathlib import Path


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts = []

    def handle_data(self, data):
        self.parts.append(data)


def visible_text(path: Path) -> str:
    """The text nodes of an HTML file, joined: what a browser shows, without the markup."""
    parser = _Text()
    parser.feed(Path(path).read_text())
    return "".join(parser.parts)
