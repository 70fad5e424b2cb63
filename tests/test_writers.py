import csv
import datetime
import io
from decimal import Decimal

import pytest

from django_async_reports.writers import CSVWriter, get_writer_class
from django_async_reports.writers.csv import neutralize_cell


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("-cmd", "'-cmd"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-12.5", "-12.5"),
        ("+3", "+3"),
        ("1e-5", "1e-5"),
        ("plain", "plain"),
        ("", ""),
        (-5, -5),
        (Decimal("-1.20"), Decimal("-1.20")),
        (None, None),
    ],
)
def test_neutralize_cell(value, expected):
    assert neutralize_cell(value) == expected


def write(rows, **kwargs):
    buffer = io.BytesIO()
    writer = CSVWriter(buffer, **kwargs)
    writer.write_header(["a", "b", "c"])
    writer.write_rows(rows)
    writer.close()
    return buffer.getvalue()


def test_csv_is_utf8_with_header_and_native_values():
    data = write([(1, 'Zoë, "quoted"', Decimal("2.50")), (2, datetime.date(2024, 1, 2), None)])
    text = data.decode("utf-8")
    assert list(csv.reader(io.StringIO(text))) == [
        ["a", "b", "c"],
        ["1", 'Zoë, "quoted"', "2.50"],
        ["2", "2024-01-02", ""],
    ]


def test_formulas_neutralised_by_default_and_opt_out():
    assert b"'=1+1" in write([(1, "=1+1", -3)])
    assert b",-3" in write([(1, "=1+1", -3)])
    raw = write([(1, "=1+1", -3)], neutralize_formulas=False)
    assert b"'=" not in raw and b"=1+1" in raw


def test_nul_characters_are_written_as_python_3_11_writes_them_on_every_version():
    # Python 3.10's csv module refuses NUL ("need to escape"): a report whose data
    # held one failed there. Every version now writes the same bytes.
    buffer = io.BytesIO()
    writer = CSVWriter(buffer)
    writer.write_header(["n\0ame", "b", "c"])
    writer.write_rows([("a\0b", "x,y", 1), (None, 'q"\0', "\ue000\0"), ("plain", "", 2.5)])
    writer.close()
    assert buffer.getvalue().decode("utf-8") == (
        'n\0ame,b,c\r\na\0b,"x,y",1\r\n,"q""\0",\ue000\0\r\nplain,,2.5\r\n'
    )


def test_buffer_stays_open_after_close():
    buffer = io.BytesIO()
    writer = CSVWriter(buffer)
    writer.write_header(["x"])
    writer.close()
    assert not buffer.closed
    assert buffer.getvalue() == b"x\r\n"


def test_writer_lookup():
    assert get_writer_class("csv") is CSVWriter
    with pytest.raises(LookupError):
        get_writer_class("docx")
