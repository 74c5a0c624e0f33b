"""Checks a Zendesk app zip against the rules of Zendesk's validator (zendesk/zendesk_apps_support,
PLATFORMS.md 1.1-1.2) and the logo sizes Zendesk asks for. `zcli apps:validate` is not offline (it uploads
the zip to a Zendesk account), so replaydesk's tests run this instead. Usage: check_zaf_package.py ZIP URL"""
import json, re, struct, sys, zipfile, zlib
from urllib.parse import urlparse

path, url = sys.argv[1], sys.argv[2].rstrip("/")
z = zipfile.ZipFile(path)
assert z.testzip() is None, "every entry's CRC matches"
names = set(z.namelist())
m = json.loads(z.read("manifest.json"))

# REQUIRED_MANIFEST_FIELDS, location, frameworkVersion
for key in ("author", "defaultLocale", "location", "frameworkVersion"):
    assert key in m, f"manifest.{key} is required"
assert m["frameworkVersion"] == "2.0", "frameworkVersion is AppVersion::CURRENT"
assert re.match(r"^[a-z]{2,3}(-\w{2,3})?$", m["defaultLocale"]), "defaultLocale format"
assert f"translations/{m['defaultLocale']}.json" in names, "missing_translation_file"
for key in ("requirementsOnly", "marketingOnly", "singleInstall", "signedUrls", "private"):
    assert key not in m or isinstance(m[key], bool), f"{key} is a boolean"
for key in ("defaultLocale", "version", "frameworkVersion", "remoteInstallationURL", "termsConditionsURL", "gaID"):
    assert key not in m or isinstance(m[key], str), f"{key} is a string"
author = m["author"]
assert all(author.get(k) for k in ("name", "email", "url")), "author has name, email and url"
parsed = urlparse(author["url"])
assert parsed.scheme in ("http", "https") and parsed.netloc, "author.url is a valid URL"
assert m["signedUrls"] is True and m["private"] is True
assert isinstance(m.get("parameters", []), list), "parameters is an array"
sidebar = m["location"]["support"]["ticket_sidebar"]
allowed = {"url", "flexible", "autoLoad", "autoHide", "signed", "size", "legacy", "objectTypes"}
assert set(sidebar) <= allowed, f"location options {set(sidebar) - allowed}"
assert sidebar["url"] == f"{url}/zendesk/app", sidebar["url"]
# frameworkVersion >= 2: iframe only, no templates/stylesheets
assert not any(n.startswith("templates/") for n in names)

t = json.loads(z.read("translations/en.json"))
assert isinstance(t, dict) and isinstance(t["app"]["name"], str) and t["app"]["name"], "app.name"
for n in names:
    assert not re.search(r"\.(zip|rar|pdf|docx?|exe)$", n), f"blocked file type {n}"

def png_size(data, alpha):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "PNG signature"
    pos, chunks, idat = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"CRC of {kind}"
        chunks.append(kind)
        if kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND"
    w, h, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert depth == 8 and (colour == 6 if alpha else colour in (2, 6))
    assert len(zlib.decompress(idat)) == h * (w * 4 + 1), "the image data is complete"
    return w, h

assert png_size(z.read("assets/logo.png"), False) == (320, 320)
assert png_size(z.read("assets/logo-small.png"), True) == (128, 128)
print("ok")
