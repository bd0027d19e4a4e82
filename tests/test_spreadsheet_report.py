"""Unit tests of processors/spreadsheets/report.py: the counts an import reports."""

from processors.spreadsheets.report import ImportReport, Tally


def test_an_object_created_or_changed_is_not_also_counted_unchanged():
    tally = Tally()
    tally.created["operations"].update({1, 2})
    tally.changed["operations"].update({2, 3})
    tally.unchanged["operations"].update({1, 3, 4})
    report = ImportReport(file_name="t.csv", controller="c", dry_run=False)

    tally.count_into(report)

    assert report.counts["operations"].to_dict() == {"created": 2, "changed": 1, "unchanged": 1}


def test_an_object_named_on_many_rows_is_counted_once():
    tally = Tally()
    for _row in range(3):
        tally.unchanged["services"].add(7)
    report = ImportReport(file_name="t.csv", controller="c", dry_run=False)

    tally.count_into(report)

    assert report.counts["services"].unchanged == 1
