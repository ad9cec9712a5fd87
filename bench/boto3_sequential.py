#!/usr/bin/env python3
"""Post a batch the way the boto3 docs and amti do it: one HIT type, then a sequential loop of
create_hit_with_hit_type with the client's default retries and no UniqueRequestToken (the
documented idiom sends none). HIT ids are written out at the end, as amti records a batch.

Usage: boto3_sequential.py ENDPOINT ITEMS.csv TEMPLATE.html OUT.json
The RequesterAnnotation carries the item key only so that the benchmark can count duplicates
from the simulator's side; it does not change the script's behaviour.
"""
import csv
import html
import json
import sys

import boto3

HTML_QUESTION = (
    '<HTMLQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/'
    '2011-11-11/HTMLQuestion.xsd"><HTMLContent><![CDATA[{}]]></HTMLContent>'
    "<FrameHeight>0</FrameHeight></HTMLQuestion>"
)


def main():
    endpoint, items_path, template_path, out_path = sys.argv[1:5]
    client = boto3.client(
        "mturk",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIASIMULATOR",
        aws_secret_access_key="simulator-secret",
    )
    template = open(template_path, encoding="utf-8").read()
    hit_type_id = client.create_hit_type(
        Title="Label a sentence (boto3)",
        Description="Read one sentence and label it.",
        Keywords="text, labeling",
        Reward="0.10",
        AssignmentDurationInSeconds=600,
        AutoApprovalDelayInSeconds=259200,
    )["HITTypeId"]
    created = {}
    failures = 0
    with open(items_path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            question = HTML_QUESTION.format(template.replace("{{ item.text }}", html.escape(row["text"])))
            try:
                hit = client.create_hit_with_hit_type(
                    HITTypeId=hit_type_id,
                    MaxAssignments=3,
                    LifetimeInSeconds=7 * 86400,
                    Question=question,
                    RequesterAnnotation=row["id"],
                )["HIT"]
                created[row["id"]] = hit["HITId"]
            except Exception as e:  # the idiom: log and move on
                failures += 1
                print(f"failed {row['id']}: {e}", file=sys.stderr)
    json.dump({"hits": created, "failures": failures}, open(out_path, "w"))


if __name__ == "__main__":
    main()
