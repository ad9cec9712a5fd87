"""boto3 against the simulator: the calls turkform makes, checked the way a Python user sees them.

Usage: python3 boto3_flow.py ENDPOINT_URL
Exits 0 and prints OK on success; any failed check raises.
"""

import datetime
import json
import re
import sys
import urllib.request

import boto3
import botocore.config
from botocore.exceptions import ClientError

URL = sys.argv[1]
QUESTION = (
    '<HTMLQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd">'
    "<HTMLContent><![CDATA[<crowd-form><crowd-input name=\"label\"></crowd-input></crowd-form>]]></HTMLContent>"
    "<FrameHeight>0</FrameHeight></HTMLQuestion>"
)


def client(secret="simulator-secret"):
    return boto3.client(
        "mturk",
        endpoint_url=URL,
        region_name="us-east-1",
        aws_access_key_id="AKIASIMULATOR",
        aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


def control(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


mturk = client()
assert mturk.get_account_balance()["AvailableBalance"] == "10000.00"

hit_type = mturk.create_hit_type(
    Title="Label a photo",
    Description="Say what is in one photo",
    Keywords="image,label",
    Reward="0.10",
    AssignmentDurationInSeconds=600,
    AutoApprovalDelayInSeconds=3600,
    QualificationRequirements=[
        {"QualificationTypeId": "00000000000000000071", "Comparator": "In", "LocaleValues": [{"Country": "US"}]},
        {"QualificationTypeId": "000000000000000000L0", "Comparator": "GreaterThanOrEqualTo", "IntegerValues": [95]},
    ],
)["HITTypeId"]

hit = mturk.create_hit_with_hit_type(
    HITTypeId=hit_type,
    MaxAssignments=2,
    LifetimeInSeconds=3600,
    Question=QUESTION,
    RequesterAnnotation="boto3/item-1",
    UniqueRequestToken="boto3-item-1",
)["HIT"]
hit_id = hit["HITId"]
assert isinstance(hit["CreationTime"], datetime.datetime), hit["CreationTime"]
assert hit["HITStatus"] == "Assignable"
assert hit["QualificationRequirements"][0]["LocaleValues"] == [{"Country": "US"}]

try:
    mturk.create_hit_with_hit_type(
        HITTypeId=hit_type, MaxAssignments=2, LifetimeInSeconds=3600, Question=QUESTION,
        UniqueRequestToken="boto3-item-1",
    )
    raise AssertionError("a reused token must fail")
except ClientError as e:
    assert e.response["Error"]["Code"] == "RequestError", e.response
    assert e.response["TurkErrorCode"] == "AWS.MechanicalTurk.HitAlreadyExists", e.response
    ids = re.findall(r"[A-Z0-9]{30}", e.response["Error"]["Message"])
    assert ids == [hit_id], e.response

for i in range(4):
    mturk.create_hit_with_hit_type(
        HITTypeId=hit_type, LifetimeInSeconds=3600, Question=QUESTION, UniqueRequestToken=f"boto3-more-{i}"
    )
seen = []
token = None
while True:
    kwargs = {"MaxResults": 2}
    if token:
        kwargs["NextToken"] = token
    page = mturk.list_hits(**kwargs)
    assert page["NumResults"] == len(page["HITs"])
    seen.extend(h["HITId"] for h in page["HITs"])
    token = page.get("NextToken")
    if not token:
        break
assert len(seen) == 5 and len(set(seen)) == 5 and seen[0] == hit_id, seen
paginated = [h["HITId"] for p in mturk.get_paginator("list_hits").paginate(PaginationConfig={"PageSize": 3}) for h in p["HITs"]]
assert paginated == seen, paginated
try:
    mturk.list_hits(MaxResults=101)
    raise AssertionError("MaxResults 101 must fail")
except ClientError as e:
    assert e.response["TurkErrorCode"] == "AWS.MechanicalTurk.InvalidParameterValue", e.response

work = control("POST", "/_sim/work", {"hit_id": hit_id, "assignments_per_hit": 1, "answers": {"label": "cat"}})
assignment_id = work["assignments"][0]
listed = mturk.list_assignments_for_hit(HITId=hit_id, AssignmentStatuses=["Submitted"])
assert [a["AssignmentId"] for a in listed["Assignments"]] == [assignment_id], listed
assert "taskAnswers" in listed["Assignments"][0]["Answer"]
mturk.approve_assignment(AssignmentId=assignment_id, RequesterFeedback="thanks")
assert mturk.get_assignment(AssignmentId=assignment_id)["Assignment"]["AssignmentStatus"] == "Approved"

# Expire: a past ExpireAt (a datetime, sent as epoch seconds) ends the HIT now.
mturk.update_expiration_for_hit(HITId=hit_id, ExpireAt=datetime.datetime(2015, 1, 1))
got = mturk.get_hit(HITId=hit_id)["HIT"]
assert got["HITStatus"] == "Reviewable", got["HITStatus"]
assert got["NumberOfAssignmentsCompleted"] == 1
assert got["Expiration"] <= datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=5)
mturk.delete_hit(HITId=hit_id)
try:
    mturk.get_hit(HITId=hit_id)
    raise AssertionError("a deleted HIT is gone")
except ClientError as e:
    assert e.response["TurkErrorCode"] == "AWS.MechanicalTurk.HITDoesNotExist", e.response
    assert e.response["Error"]["Message"].startswith(f"Hit {hit_id} does not exist. ("), e.response

qual = mturk.create_qualification_type(Name="boto3-trained", Description="d", QualificationTypeStatus="Active")
assert qual["QualificationType"]["Name"] == "boto3-trained"
try:
    mturk.create_qualification_type(Name="boto3-trained", Description="d", QualificationTypeStatus="Active")
    raise AssertionError("duplicate name must fail")
except ClientError as e:
    assert e.response["TurkErrorCode"] == "AWS.MechanicalTurk.QualificationTypeAlreadyExists"

try:
    client(secret="wrong").get_account_balance()
    raise AssertionError("a wrong secret must fail")
except ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidSignatureException", e.response
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400

balance = mturk.get_account_balance()["AvailableBalance"]
# 5 HITs: one with 2 assignments and four with 1, at 0.10 + 0.02 each.
assert balance == "9999.28", balance
print("OK")
