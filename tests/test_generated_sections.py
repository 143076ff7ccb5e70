"""Generated Markdown sections: only the text between a section's markers is rewritten."""

import pytest

from googlenet_utils.generated_sections import MissingSectionError, has_section, markers, replace_section


def test_only_the_section_between_its_markers_changes():
    start, end = markers("table")
    text = f"# Title\n\nby hand\n{start}\nold\nrows\n{end}\nafter, by hand\n"
    assert (
        replace_section(text, "table", "new") == f"# Title\n\nby hand\n{start}\nnew\n{end}\nafter, by hand\n"
    )
    other_start, other_end = markers("other")
    both = f"{other_start}\nkept\n{other_end}\n{text}"
    assert replace_section(both, "table", "new").startswith(f"{other_start}\nkept\n{other_end}\n")


@pytest.mark.parametrize(
    "text",
    [
        "no markers",
        "<!-- table:start -->\nonly a start",
        "<!-- table:end -->\n<!-- table:start -->\nreversed",
    ],
)
def test_a_missing_or_reversed_section_is_an_error_that_names_it(text):
    assert not has_section(text, "table")
    with pytest.raises(MissingSectionError, match="table:start -->"):
        replace_section(text, "table", "new")
