"""The fleet's pure parts: the shared secret, gathering and summing across hosts."""

from __future__ import annotations

import pandas as pd
import pytest

from bpfnb.errors import NotAuthorisedError
from bpfnb.fleet import auth
from bpfnb.fleet.program import _concat, _group, _sum_hosts
from bpfnb.fleet.worker import LoadRequest, RemoteFailure


def _request(**changes: object) -> LoadRequest:
    fields: dict[str, object] = {
        "load_id": "id",
        "owner": "me",
        "name": "calls",
        "data": b"\x7fELF object",
        "source": "",
        "cell_file": "calls.bpf.c",
        "globals": {"limit": 3},
        "host_globals": {"web1": {"target_pid": 42}},
        "timestamp": 1000.0,
    }
    fields.update(changes)
    return LoadRequest(**fields)  # type: ignore[arg-type]


def test_a_signed_request_passes_and_any_change_is_refused() -> None:
    secret = "s3cret"
    good = _request()
    signature = auth.sign(secret, good.digest())
    auth.verify(secret, good.digest(), signature, good.timestamp, host="web1", now=1010.0)
    auth.verify(None, good.digest(), None, good.timestamp, host="web1")  # no secret: open
    for changed in (
        _request(data=b"\x7fELF other"),
        _request(name="other"),
        _request(host_globals={"web1": {"target_pid": 1}}),
        _request(globals={"limit": 4}),
    ):
        with pytest.raises(NotAuthorisedError, match=r"host web1 .*does not match"):
            auth.verify(secret, changed.digest(), signature, 1000.0, host="web1", now=1010.0)
    with pytest.raises(NotAuthorisedError, match="requires the fleet secret"):
        auth.verify(secret, good.digest(), None, good.timestamp, host="web1")
    with pytest.raises(NotAuthorisedError, match="old"):
        auth.verify(secret, good.digest(), signature, 1000.0, host="web1", now=1000.0 + 3600)
    with pytest.raises(NotAuthorisedError, match="does not match"):
        auth.verify("other", good.digest(), signature, 1000.0, host="web1", now=1000.0)


def test_the_secret_comes_from_the_environment(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "secret"
    path.write_text("from-file\n")
    assert auth.local_secret({}) is None
    assert auth.local_secret({auth.SECRET_ENV: "x"}) == "x"
    assert auth.local_secret({auth.SECRET_FILE_ENV: str(path)}) == "from-file"
    assert auth.local_secret({auth.SECRET_ENV: "x", auth.SECRET_FILE_ENV: str(path)}) == "x"


def test_globals_per_host_win() -> None:
    request = _request()
    assert request.globals_for("web1") == {"limit": 3, "target_pid": 42}
    assert request.globals_for("web2") == {"limit": 3}


def test_concat_puts_host_first_and_sum_adds_equal_keys() -> None:
    frames = {
        "a": pd.DataFrame({"key": [1, 2], "value": pd.array([10, 20], dtype="uint64")}),
        "b": pd.DataFrame({"key": [2, 3], "value": pd.array([5, 7], dtype="uint64")}),
    }
    gathered = _concat(frames)
    assert gathered is not None
    assert list(gathered.columns) == ["host", "key", "value"]
    assert gathered.values.tolist() == [["a", 1, 10], ["a", 2, 20], ["b", 2, 5], ["b", 3, 7]]
    summed = _sum_hosts(gathered, ["key"]).sort_values("key")
    assert summed.values.tolist() == [[1, 10], [2, 25], [3, 7]]
    assert summed["value"].dtype == "uint64"
    assert _concat({}) is None


def test_failures_are_grouped_by_message() -> None:
    failures = {
        h: RemoteFailure(h, "VerifierError", "line 13: invalid mem access") for h in ("0", "1")
    }
    failures["2"] = RemoteFailure("2", "NotAuthorisedError", "no secret")
    assert _group(failures).splitlines() == [
        "hosts 0, 1: VerifierError: line 13: invalid mem access",
        "host 2: NotAuthorisedError: no secret",
    ]
