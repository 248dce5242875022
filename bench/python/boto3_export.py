"""The export as a user would write it in Python with boto3: page through the activity table
(newest first), write Excel-compatible CSV (BOM, CRLF, the same nine columns, times in the
export's zone, formula cells neutralised) and upload it to S3 in 8 MiB multipart parts.

Run by scripts/bench (bench/src/bin/bench.rs), which measures this process's CPU time and peak
RSS from outside, against the same emulator and data as the export-worker function.

Usage: boto3_export.py <table> <partner> <from> <to> <bucket> <key> <time zone>
Prints one JSON line: rows, parts, bytes, peak RSS (VmHWM, KiB).
"""

import csv
import io
import json
import re
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import boto3
from boto3.dynamodb.conditions import Key

HEADER = ["Date-Time", "Affected customer", "Action", "Partner user", "Customer ID",
          "Resource type", "Status", "Activity ID", "Details", "Recorded by", "Sequence", "Hash"]
PART_BYTES = 8 * 1024 * 1024


# The service's formula rule: a ' before a formula character (or ', or " and a formula
# character) at a cell start and after every , ; TAB CR or LF.
GUARDED = re.compile(r"(^|[,;\t\r\n])(?=[=+\-@\t\r']|\"[=+\-@\t\r])")


def cell(value):
    return GUARDED.sub(r"\1'", value or "")


def main():
    table_name, partner, start, end, bucket, key, zone = sys.argv[1:8]
    tz = ZoneInfo(zone)
    table = boto3.resource("dynamodb").Table(table_name)
    s3 = boto3.client("s3")

    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="text/csv; charset=utf-8")
    parts, rows, size = [], 0, 0
    text = io.StringIO()
    text.write("\ufeff")
    writer = csv.writer(text, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(HEADER)

    def upload_part(data):
        number = len(parts) + 1
        answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"],
                                PartNumber=number, Body=data)
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    query = {
        "IndexName": "byPartnerTime",
        "KeyConditionExpression": Key("gpk").eq(f"P#{partner}") & Key("gsk").between(start, end + "$"),
        "ScanIndexForward": False,
    }
    while True:
        page = table.query(**query)
        for item in page["Items"]:
            when = datetime.fromisoformat(item["occurredAt"].replace("Z", "+00:00")).astimezone(tz)
            writer.writerow([cell(v) for v in (
                when.isoformat(timespec="milliseconds"), item["customerName"], item["action"],
                item["partnerUser"], item["customerId"], item.get("resourceType"), item["status"],
                item["id"], item.get("details"), item.get("recordedBy"),
                str(item["sequence"]) if "sequence" in item else None, item.get("hash"))])
            rows += 1
            if text.tell() >= PART_BYTES:
                data = text.getvalue().encode("utf-8")
                size += len(data)
                upload_part(data)
                text.seek(0)
                text.truncate()
        if "LastEvaluatedKey" not in page:
            break
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    data = text.getvalue().encode("utf-8")
    size += len(data)
    upload_part(data)
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": parts})
    with open("/proc/self/status") as status:
        peak = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
    print(json.dumps({"rows": rows, "parts": len(parts), "bytes": size, "peakRssKib": peak}))


if __name__ == "__main__":
    main()
