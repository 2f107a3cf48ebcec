from common.request_context import accept_request_id, new_request_id


def test_forwarded_id_accepted_only_in_our_shape():
    ours = new_request_id()
    assert accept_request_id(ours) == ours
    for foreign in ("MRN-12345", "Jane Doe", "", None, ours.upper(), ours + "0"):
        minted = accept_request_id(foreign)
        assert minted != foreign and len(minted) == 32


def test_ids_are_random():
    assert len({new_request_id() for _ in range(1000)}) == 1000
