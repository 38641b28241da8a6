// Loaders of the token tasks (ListOps, Text, Retrieval) on small files in the real formats: exact token
// ids, labels and lengths, and a clear error for each kind of bad input.
#include "data/dataset.h"
#include "data/formats.h"
#include "tests/data/fixtures.h"

using namespace lasgrad::data;
using namespace fixtures;

static std::vector<int32_t> toks(const Dataset& d, int64_t i, int doc = 0) {
  std::vector<int32_t> t(d.length(i, doc));
  d.tokens(i, doc, t.data());
  return t;
}

static void listops_files(const TempDir& dir, const std::string& train) {
  write(dir / "basic_train.tsv", train);
  write(dir / "basic_val.tsv", "Source\tTarget\r\n( ( ( [SM 1 ) 2 ) ] )\t3\r\n");
  write(dir / "basic_test.tsv", "Source\tTarget\n9\t9\n");
}

TEST_CASE("ListOps: tokens, labels, lengths, CRLF and the release's sub-folder") {
  TempDir dir;
  listops_files(dir, "Source\tTarget\n( ( ( [MED 6 ) 1 ) ] )\t3\n( ( ( ( [MIN 4 ) ( ( [MAX 7 ) 9 ) ] ) ) 0 ) ] )\t0\n");
  auto d = open_task("listops", dir.str(), Split::Train);
  REQUIRE(d->size() == 2);
  CHECK(d->num_classes() == 10);
  CHECK(d->vocab_size() == 17);
  CHECK(d->max_length() == 2000);
  // [MED=4 6->13 1->8 X=6
  CHECK(toks(*d, 0) == std::vector<int32_t>{4, 13, 8, 6});
  CHECK(d->label(0) == 3);
  CHECK(toks(*d, 1) == std::vector<int32_t>{2, 11, 3, 14, 16, 6, 7, 6});
  CHECK(d->label(1) == 0);
  CHECK(d->text(0) == "[MED 6 1 X");
  CHECK(d->token_texts(0) == std::vector<std::string>{"[MED", "6", "1", "X"});  // one per position, for the maps' axes
  CHECK(d->notes().empty());

  auto v = open_task("listops", dir.str(), Split::Val);  // CRLF line ends
  CHECK(toks(*v, 0) == std::vector<int32_t>{5, 8, 9, 6});
  CHECK(v->label(0) == 3);

  // The release keeps the files in listops-1000/.
  TempDir root;
  listops_files(TempDir{}, "");
  fs::create_directories(root / "listops-1000");
  write(root / "listops-1000" / "basic_test.tsv", "Source\tTarget\n7\t7\n");
  auto t = open_task("listops", root.str(), Split::Test);
  CHECK(toks(*t, 0) == std::vector<int32_t>{14});

  Options o;
  o.max_length = 3;
  auto cut = open_task("listops", dir.str(), Split::Train, o);
  CHECK(toks(*cut, 1) == std::vector<int32_t>{2, 11, 3});
  CHECK(cut->max_length() == 3);
  REQUIRE(cut->notes().size() == 1);
  CHECK_MSG(cut->notes()[0], "2 of 2 examples truncated to 3 tokens");
}

TEST_CASE("ListOps: bad input names the file and line") {
  TempDir dir;
  auto err = [&](const std::string& content) {
    listops_files(dir, content);
    return error_of([&] { open_task("listops", dir.str(), Split::Train); });
  };
  std::string f = (dir / "basic_train.tsv").string();
  CHECK_MSG(err(""), f.c_str(), "empty file");
  CHECK_MSG(err("( [MAX 1 ] )\t1\n"), f.c_str(), "line 1", "expected the header");
  CHECK_MSG(err("Source\tTarget\n1\t1\n( [MAX 2 ] )\n"), f.c_str(), "line 3", "missing column");
  CHECK_MSG(err("Source\tTarget\n( [MAX 2 ] )\tx\n"), f.c_str(), "line 2", "label 'x' is not a number");
  CHECK_MSG(err("Source\tTarget\n( [MAX 2 ] )\t12\n"), "line 2", "label '12' is out of range 0..9");
  CHECK_MSG(err("Source\tTarget\n( [MAX 2 ] )\t-1\n"), "line 2", "out of range");
  CHECK_MSG(err("Source\tTarget\n( [MAX 2 ] )\t\n"), "line 2", "label '' is not a number");
  CHECK_MSG(err("Source\tTarget\n( [MAX 2 [FOO ] )\t1\n"), f.c_str(), "line 2",
            "token '[FOO' is not in the ListOps vocabulary");
  CHECK_MSG(err("Source\tTarget\n( [MAX 12 ] )\t1\n"), "token '12'");
  CHECK_MSG(err("Source\tTarget\n( )\t1\n"), "line 2", "empty expression");

  // Not strict: unknown words become <unk> (id 1) and are counted.
  listops_files(dir, "Source\tTarget\n( [MAX 2 [FOO ] )\t1\n");
  Options o;
  o.strict_vocab = false;
  auto d = open_task("listops", dir.str(), Split::Train, o);
  CHECK(toks(*d, 0) == std::vector<int32_t>{3, 9, 1, 6});
  REQUIRE(d->notes().size() == 1);
  CHECK_MSG(d->notes()[0], "1 words outside the vocabulary");
}

TEST_CASE("Text: raw aclImdb folders, bytes + 1, folder labels, test doubles as validation") {
  TempDir dir;
  fs::path imdb = dir / "aclImdb";
  write(imdb / "train" / "pos" / "10_9.txt", "Great<br />film");
  write(imdb / "train" / "pos" / "2_8.txt", "ok\xc3\xa9");
  write(imdb / "train" / "neg" / "0_1.txt", "Bad.");
  write(imdb / "train" / "unsup" / "0_0.txt", "ignored");
  write(imdb / "test" / "pos" / "0_10.txt", "yes");
  write(imdb / "test" / "neg" / "0_2.txt", "no");
  auto d = open_task("text", dir.str(), Split::Train);
  REQUIRE(d->size() == 3);
  CHECK(d->vocab_size() == 257);
  CHECK(d->max_length() == 4096);
  // neg first, then pos in numeric id order (2 before 10).
  CHECK(d->label(0) == 0);
  CHECK(toks(*d, 0) == std::vector<int32_t>{'B' + 1, 'a' + 1, 'd' + 1, '.' + 1});
  CHECK(d->label(1) == 1);
  CHECK(toks(*d, 1) == std::vector<int32_t>{'o' + 1, 'k' + 1, 0xc3 + 1, 0xa9 + 1});
  CHECK(d->text(2) == "Great<br />film");  // no cleaning
  CHECK(d->token_texts(2).size() == 15);
  CHECK(d->token_texts(2)[5] == "<");
  CHECK(d->length(2) == 15);

  auto v = open_task("text", dir.str(), Split::Val);
  CHECK(v->size() == 2);
  CHECK(v->text(1) == "yes");
  CHECK_MSG(v->notes().at(0), "test split stands in");

  Options o;
  o.max_length = 4;
  auto cut = open_task("text", (dir / "aclImdb").string(), Split::Train, o);
  CHECK(cut->text(2) == "Grea");
  CHECK_MSG(cut->notes().at(0), "1 of 3 reviews truncated to 4 bytes");

  write(imdb / "train" / "neg" / "5_3.txt", "");
  CHECK_MSG(error_of([&] { open_task("text", dir.str(), Split::Train); }), "5_3.txt", "empty file");
}

TEST_CASE("Text: label<TAB>text TSV") {
  TempDir dir;
  write(dir / "train.tsv", "label\ttext\n1\tfine\tand \"quoted\"\n0\tmeh\n");
  write(dir / "test.tsv", "0\tx\n");
  auto d = open_task("text", dir.str(), Split::Train);
  REQUIRE(d->size() == 2);
  CHECK(d->text(0) == "fine\tand \"quoted\"");
  CHECK(d->label(0) == 1);
  CHECK(d->label(1) == 0);
  write(dir / "train.tsv", "0\tok\npos\tgreat\n");
  CHECK_MSG(error_of([&] { open_task("text", dir.str(), Split::Train); }), "train.tsv line 2",
            "label 'pos' is not a number");
  write(dir / "train.tsv", "0\tok\n2\tgreat\n");
  CHECK_MSG(error_of([&] { open_task("text", dir.str(), Split::Train); }), "line 2", "out of range 0..1");
  write(dir / "train.tsv", "0 ok\n");
  CHECK_MSG(error_of([&] { open_task("text", dir.str(), Split::Train); }), "line 1", "missing column");
  write(dir / "train.tsv", "");
  CHECK_MSG(error_of([&] { open_task("text", dir.str(), Split::Train); }), "train.tsv", "empty file");
}

TEST_CASE("Retrieval: AAN lines with quotes, tabs inside quotes and non-ASCII bytes") {
  TempDir dir;
  std::string lines =
      "1.0\tP01\tP02\tSaid \"hi\" 'there'\tA \xe2\x80\x94 b\n"
      "0.0\tP03\tP04\t\"a\tb\"\tc\td\n"  // tabs inside quotes: no quote handling, extra tabs go to text2
      "1\tP05\tP06\t\t\n";               // empty documents are allowed
  write(dir / "tsv_data" / "new_aan_pairs.train.tsv", lines);
  write(dir / "tsv_data" / "new_aan_pairs.eval.tsv", "0.0\ta\tb\tx\ty\n");
  auto d = open_task("retrieval", dir.str(), Split::Train);
  REQUIRE(d->size() == 3);
  CHECK(d->info().pair);
  CHECK(d->max_length() == 4000);
  CHECK(d->label(0) == 1);
  CHECK(d->text(0, 0) == "Said \"hi\" 'there'");
  CHECK(toks(*d, 0, 1) == std::vector<int32_t>{'A' + 1, ' ' + 1, 0xe2 + 1, 0x80 + 1, 0x94 + 1, ' ' + 1, 'b' + 1});
  CHECK(d->label(1) == 0);
  CHECK(d->text(1, 0) == "\"a");
  CHECK(d->text(1, 1) == "b\"\tc\td");
  CHECK(d->length(2, 0) == 0);
  CHECK(d->length(2, 1) == 0);
  CHECK_MSG(d->notes().at(0), "1 of 3 lines have more than 5 tab-separated fields");

  Batch b;
  std::vector<int64_t> rows = {0, 1};
  d->make_batch(rows, false, b);
  CHECK(b.length == 17);
  CHECK(b.lengths == std::vector<int32_t>{17, 2});
  CHECK(b.lengths2 == std::vector<int32_t>{7, 6});
  CHECK(b.tokens2[7] == 0);         // padding after document 2 of row 0
  CHECK(b.tokens2[17] == 'b' + 1);  // row 1 of document 2
  CHECK(b.tokens[17 + 2] == 0);     // row 1 padded after 2 tokens

  auto v = open_task("retrieval", (dir / "tsv_data").string(), Split::Val);  // val reads the eval file
  CHECK(v->text(0, 1) == "y");

  auto err = [&](const std::string& content) {
    write(dir / "tsv_data" / "new_aan_pairs.test.tsv", content);
    return error_of([&] { open_task("retrieval", dir.str(), Split::Test); });
  };
  CHECK_MSG(err("1.0\ta\tb\tx\ty\nyes\ta\tb\tx\ty\n"), "new_aan_pairs.test.tsv line 2", "label 'yes' is not a number");
  CHECK_MSG(err("2.0\ta\tb\tx\ty\n"), "line 1", "label '2.0' is out of range");
  CHECK_MSG(err("0.5\ta\tb\tx\ty\n"), "line 1", "out of range");
  CHECK_MSG(err("1.0\ta\tb\tx\n"), "line 1", "missing column", "found 4");
  CHECK_MSG(err(""), "new_aan_pairs.test.tsv", "empty file");
  CHECK_MSG(err("nan\ta\tb\tx\ty\n"), "not a number");
}

TEST_CASE("open_task: unknown task, missing folder, missing file") {
  TempDir dir;
  CHECK_MSG(error_of([&] { open_task("cifar", dir.str(), Split::Train); }), "unknown task 'cifar'", "listops");
  CHECK_MSG(error_of([&] { open_task("listops", (dir / "nope").string(), Split::Train); }), "ListOps: data folder",
            "does not exist");
  CHECK_MSG(error_of([&] { open_task("listops", dir.str(), Split::Train); }), "no ListOps file basic_train.tsv");
  CHECK_MSG(error_of([&] { parse_split("dev"); }), "unknown split 'dev'");
}
