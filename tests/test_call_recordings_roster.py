"""Extension.record_calls in the roster import: a column of its own, empty means no, a re-import
that changes it says the extension was updated."""

import pytest

from accounts.models import Extension
from accounts.roster_import import RosterImportError, import_roster

pytestmark = pytest.mark.django_db

HEADER = "username,role,curator,technology,resource,record_calls\n"


def test_record_calls_is_read_empty_means_no_and_a_change_is_an_update():
    import_roster((HEADER + "orlov,curator,,SIP,301,\nvolkova,trainee,orlov,SIP,302,yes\n").encode())
    assert dict(Extension.objects.values_list("resource", "record_calls")) == {"301": False, "302": True}
    report = import_roster((HEADER + "orlov,curator,,SIP,301,1\nvolkova,trainee,orlov,SIP,302,yes\n").encode())
    assert report.extensions_updated == ["SIP/301"] and report.extensions_unchanged == ["SIP/302"]
    assert Extension.objects.get(resource="301").record_calls is True


def test_a_word_that_is_not_yes_or_no_is_refused_with_its_line():
    with pytest.raises(RosterImportError) as caught:
        import_roster((HEADER + "orlov,curator,,SIP,301,perhaps\n").encode())
    assert [(error.line, error.column) for error in caught.value.errors] == [(2, "record_calls")]
    assert not Extension.objects.exists()
