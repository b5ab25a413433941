"""The loader links a large file in slices; a slice never ends inside the hops of one response."""

from __future__ import annotations

import test_exchange_format as cases


def test_hops_split_across_link_slices_still_share_the_presented_credit(tmp_path, db, monkeypatch):
    monkeypatch.setattr("ingest.linking.LINK_SLICE", 2)  # three attempts: a slice of 2 would end between the hops
    cases.test_a_server_side_response_presenting_a_credit_joins_the_minting_chain_with_every_hop(tmp_path, db)
