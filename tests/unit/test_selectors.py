import pytest

from k8py.apimachinery.errors import StatusError
from k8py.apimachinery.selectors import (parse_field_selector, parse_label_selector,
                                         selector_from_label_selector, selector_string)


@pytest.mark.parametrize("text,labels,expected", [
    ("app=web", {"app": "web"}, True),
    ("app=web", {"app": "db"}, False),
    ("app==web", {"app": "web"}, True),
    ("app!=web", {}, True),
    ("app!=web", {"app": "web"}, False),
    ("app in (web,db)", {"app": "db"}, True),
    ("app in (web, db)", {"app": "cache"}, False),
    ("app notin (web)", {}, True),
    ("app notin (web)", {"app": "web"}, False),
    ("app", {"app": ""}, True),
    ("app", {}, False),
    ("!app", {}, True),
    ("!app", {"app": "x"}, False),
    ("app=web,tier=fe", {"app": "web", "tier": "fe"}, True),
    ("app=web,tier=fe", {"app": "web"}, False),
    ("example.com/role=x", {"example.com/role": "x"}, True),
    ("n>3", {"n": "5"}, True),
    ("n<3", {"n": "5"}, False),
    ("", {"anything": "x"}, True),
])
def test_label_selector_matching(text, labels, expected):
    assert parse_label_selector(text).matches(labels) is expected


@pytest.mark.parametrize("text", ["app in web", "app=web,,", "=web", "app in (web", "a b"])
def test_bad_label_selectors_are_400(text):
    with pytest.raises(StatusError) as err:
        parse_label_selector(text)
    assert err.value.code == 400
    assert "unable to parse requirement" in err.value.message


def test_label_selector_object_and_string_form():
    spec = {"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]}
    sel = selector_from_label_selector(spec)
    assert sel.matches({"app": "web", "tier": "be"})
    assert not sel.matches({"app": "web", "tier": "db"})
    assert selector_string(spec) == "app=web,tier in (be,fe)"
    assert selector_from_label_selector(None) is None
    assert selector_from_label_selector({}).matches({"x": "y"})


def test_field_selector():
    sel = parse_field_selector("metadata.name=web,spec.nodeName!=n1")
    assert sel.matches({"metadata.name": "web", "spec.nodeName": "n2"})
    assert not sel.matches({"metadata.name": "web", "spec.nodeName": "n1"})
    assert sel.exact_name() == "web"
    with pytest.raises(StatusError) as err:
        parse_field_selector("metadata.name")
    assert err.value.code == 400
