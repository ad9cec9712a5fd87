#!/usr/bin/env python3
"""What a careful requester writes: a 16-thread pool and botocore's adaptive retry mode (client-
side rate limiting that reacts to ThrottlingException). Still no UniqueRequestToken: neither the
boto3 docs nor amti/psiTurk/Mephisto send one.

Usage: boto3_threaded.py ENDPOINT ITEMS.csv TEMPLATE.html OUT.json
"""
import csv
import html
import json
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

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
        config=Config(retries={"mode": "adaptive", "max_attempts": 10}, max_pool_connections=16),
    )
    template = open(template_path, encoding="utf-8").read()
    hit_type_id = client.create_hit_type(
        Title="Label a sentence (boto3 threaded)",
        Description="Read one sentence and label it.",
        Keywords="text, labeling",
        Reward="0.10",
        AssignmentDurationInSeconds=600,
        AutoApprovalDelayInSeconds=259200,
    )["HITTypeId"]
    with open(items_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))

    def create(row):
        question = HTML_QUESTION.format(template.replace("{{ item.text }}", html.escape(row["text"])))
        try:
            hit = client.create_hit_with_hit_type(
                HITTypeId=hit_type_id,
                MaxAssignments=3,
                LifetimeInSeconds=7 * 86400,
                Question=question,
                RequesterAnnotation=row["id"],
            )["HIT"]
            return row["id"], hit["HITId"]
        except Exception as e:
            print(f"failed {row['id']}: {e}", file=sys.stderr)
            return row["id"], None

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(create, rows))
    created = {k: v for k, v in results if v}
    json.dump({"hits": created, "failures": sum(1 for _, v in results if not v)}, open(out_path, "w"))


if __name__ == "__main__":
    main()
