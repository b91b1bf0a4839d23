"""The operator console's items in the state table (docs/console.md, "The AWS deployment"): erp-post writes activity
items `act#...` that expire through the table's TTL attribute, and no function may delete them."""

import re

from conftest import REPO
from test_template import _as_list, _resources_for, _statements, _target

ACTIVITY = REPO / "shared" / "app" / "src" / "activity.rs"


def test_erp_post_may_write_activity_items_to_the_state_table(cfn):
    """The activity items are written by erp-post's role, on the table its environment names."""
    text = ACTIVITY.read_text()
    assert 'pub const PREFIX: &str = "act#";' in text
    env = cfn["Resources"]["ErpPostFunction"]["Properties"]["Environment"]["Variables"]
    assert _target(env["LEDGERBRIDGE_STATE_TABLE"]) == "StateTable"
    assert "StateTable" in _resources_for(cfn, "ErpPostFunction", "dynamodb:PutItem")


def test_activity_items_expire_through_the_tables_ttl_attribute(cfn):
    """The item's expiry attribute is the table's TTL attribute, so activity does not accumulate."""
    text = ACTIVITY.read_text()
    written = set(re.findall(r'"expiration"', text))
    assert written, "activity items carry no expiry"
    ttl = cfn["Resources"]["StateTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expiration", "Enabled": True}


def test_no_function_may_delete_activity_or_audit_items(cfn):
    """DeleteItem is limited to idempotency records everywhere, so activity (`act#`) and the operators' audit items
    (`audit#`) are removed only by their TTL (activity) or never (audit)."""
    for fid in ("WebhookIntakeFunction", "ErpPostFunction", "PayoutReconciliationFunction", "ErpSyncFunction"):
        for st in _statements(cfn, fid):
            if st["Effect"] == "Allow" and "dynamodb:DeleteItem" in _as_list(st["Action"]):
                keys = st.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
                assert keys == ["idem#*"], f"{fid}: DeleteItem reaches beyond idempotency records: {keys}"
