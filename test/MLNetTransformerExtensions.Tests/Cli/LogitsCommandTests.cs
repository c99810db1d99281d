using System.Text.Json;
using System.Text.Json.Nodes;

namespace MLNetTransformerExtensions.Tests.Cli;

/// <summary>The <c>logits</c> command against HuggingFace's outputs: ids exact, logits within 1e-4, independent of batching and padding.</summary>
[TestClass]
public sealed class LogitsCommandTests
{
    private static string WriteCases(JsonElement expected, string folder)
    {
        var path = Path.Combine(folder, "cases.jsonl");
        var lines = expected.GetProperty("cases").EnumerateArray()
            .Where(c => c.GetProperty("input_ids").GetArrayLength() > 0)
            .Select(c =>
            {
                var record = new JsonObject { ["text"] = c.GetProperty("text").GetString() };
                if (c.TryGetProperty("text_pair", out var pair) && pair.ValueKind == JsonValueKind.String)
                {
                    record["text_pair"] = pair.GetString();
                }

                return record.ToJsonString();
            });
        File.WriteAllLines(path, lines);
        return path;
    }

    private static void Check(string fixtureSet, string family, string extraArguments, string logitsField)
    {
        var folder = TestPaths.Fixtures(fixtureSet, family);
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "expected.json")));
        var cases = document.RootElement.GetProperty("cases").EnumerateArray().Where(c => c.GetProperty("input_ids").GetArrayLength() > 0).ToList();
        var work = TestPaths.NewTempDirectory();
        try
        {
            var input = WriteCases(document.RootElement, work);
            var (exit, stdout, stderr) = CliRunner.Run($"logits --model \"{folder}\" --input \"{input}\" --max-length 32 {extraArguments}");
            Assert.AreEqual(0, exit, stderr);
            var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.AreEqual(cases.Count, lines.Length, "one output line per input record");
            double worst = 0;
            for (var i = 0; i < cases.Count; i++)
            {
                using var line = JsonDocument.Parse(lines[i]);
                var ids = line.RootElement.GetProperty("input_ids").EnumerateArray().Select(v => v.GetInt32()).ToArray();
                CollectionAssert.AreEqual(cases[i].GetProperty("input_ids").EnumerateArray().Select(v => v.GetInt32()).ToArray(), ids, $"{family} case {i} ids");
                var mask = line.RootElement.GetProperty("attention_mask").EnumerateArray().Select(v => v.GetInt32()).ToArray();
                CollectionAssert.AreEqual(cases[i].GetProperty("attention_mask").EnumerateArray().Select(v => v.GetInt32()).ToArray(), mask, $"{family} case {i} mask");
                var expected = cases[i].GetProperty(logitsField).EnumerateArray().Select(v => v.GetDouble()).ToArray();
                var actual = line.RootElement.GetProperty("logits").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                Assert.AreEqual(expected.Length, actual.Length, $"{family} case {i} logits length");
                worst = Math.Max(worst, expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max());
            }

            Assert.IsTrue(worst <= 1e-4, $"{family}: max |Δ logit| {worst:E2}");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    [DataRow("bert", "--batch-size 1")]
    [DataRow("bert", "--batch-size 7 --padding left")]
    [DataRow("distilbert", "--batch-size 16 --padding left")]
    [DataRow("distilbert", "--batch-size 5")]
    [DataRow("roberta", "--batch-size 16 --padding left")]
    [DataRow("gpt2", "--batch-size 4 --padding left")]
    [DataRow("gpt2", "--batch-size 16")]
    public void ClassificationLogitsMatchHuggingFace(string family, string arguments) =>
        Check("hf-tiny", family, arguments, "logits_single");

    [TestMethod]
    [DataRow("bert", "--batch-size 3")]
    [DataRow("distilbert", "--batch-size 16 --padding left")]
    [DataRow("roberta", "--batch-size 2")]
    [DataRow("gpt2", "--batch-size 16 --padding left")]
    [DataRow("gpt2", "--batch-size 1")]
    public void LanguageModelLogitsMatchHuggingFace(string family, string arguments) =>
        Check("hf-tiny-lm", family, "--head lm " + arguments, "logits_at_position");

    [TestMethod]
    [DataRow("bart", "--batch-size 4", "logits")]
    [DataRow("bart-lm", "--head lm --batch-size 4", "first_step_logits")]
    [DataRow("t5", "--head lm --batch-size 5 --padding left", "first_step_logits")]
    [DataRow("t5-v1_1", "--head lm --batch-size 16", "first_step_logits")]
    public void EncoderDecoderLogitsMatchHuggingFace(string family, string arguments, string field) =>
        Check("hf-tiny-seq2seq", family, arguments, field);

    [TestMethod]
    [DataRow("bart-lm")]
    [DataRow("t5")]
    public void TargetsAreScoredTeacherForced(string family)
    {
        var folder = TestPaths.Fixtures("hf-tiny-seq2seq", family);
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "expected.json")));
        var cases = document.RootElement.GetProperty("cases").EnumerateArray().Where(c => c.GetProperty("text_pair").ValueKind == JsonValueKind.Null).ToList();
        var work = TestPaths.NewTempDirectory();
        try
        {
            var input = Path.Combine(work, "targets.jsonl");
            File.WriteAllLines(input, cases.Select(c => new JsonObject
            {
                ["text"] = c.GetProperty("text").GetString(),
                ["targets"] = new JsonArray([.. c.GetProperty("targets").EnumerateArray().Select(t => JsonValue.Create(t.GetProperty("target").GetString()))]),
            }.ToJsonString()));
            var (exit, stdout, stderr) = CliRunner.Run($"logits --model \"{folder}\" --input \"{input}\" --max-length 32 --head lm --batch-size 3");
            Assert.AreEqual(0, exit, stderr);
            var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            for (var i = 0; i < cases.Count; i++)
            {
                using var line = JsonDocument.Parse(lines[i]);
                var scored = line.RootElement.GetProperty("targets").EnumerateArray().ToList();
                var expected = cases[i].GetProperty("targets").EnumerateArray().ToList();
                Assert.AreEqual(expected.Count, scored.Count);
                for (var t = 0; t < expected.Count; t++)
                {
                    var tokens = expected[t].GetProperty("token_log_softmax").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                    var actual = scored[t].GetProperty("token_log_softmax").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                    Assert.AreEqual(tokens.Length, scored[t].GetProperty("labels").GetArrayLength(), "one log-probability per label token");
                    Assert.IsTrue(tokens.Zip(actual, (e, a) => Math.Abs(e - a)).Max() <= 2e-4, $"{family} case {i} target {t}");
                    Assert.AreEqual(expected[t].GetProperty("sum").GetDouble(), scored[t].GetProperty("sum").GetDouble(), 2e-4 * tokens.Length);
                    Assert.AreEqual(expected[t].GetProperty("mean").GetDouble(), scored[t].GetProperty("mean").GetDouble(), 2e-4);
                }
            }

            File.WriteAllText(input, "{\"text\": \"a\", \"targets\": [\"b\"]}");
            (exit, _, stderr) = CliRunner.Run($"logits --model \"{folder}\" --input \"{input}\"");
            Assert.AreNotEqual(0, exit);
            StringAssert.Contains(stderr, "targets.jsonl:1");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    public void AnEncoderRecordWithoutAMaskIsAnErrorNamingTheLine()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var input = Path.Combine(work, "in.jsonl");
            File.WriteAllLines(input, ["{\"text\": \"the movie was [MASK] .\"}", "{\"text\": \"no mask here\"}"]);
            var (exit, stdout, stderr) = CliRunner.Run($"logits --model \"{TestPaths.Fixtures("hf-tiny-lm", "bert")}\" --input \"{input}\" --head lm");
            Assert.AreNotEqual(0, exit);
            Assert.AreEqual(string.Empty, stdout);
            StringAssert.Contains(stderr, "in.jsonl:2");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    public void AMalformedInputLineIsAnErrorNamingTheLine()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var input = Path.Combine(work, "in.jsonl");
            File.WriteAllLines(input, ["{\"text\": \"fine\"}", "{\"text\": 3}"]);
            var (exit, stdout, stderr) = CliRunner.Run($"logits --model \"{TestPaths.Fixtures("hf-tiny", "bert")}\" --input \"{input}\"");
            Assert.AreNotEqual(0, exit);
            Assert.AreEqual(string.Empty, stdout);
            StringAssert.Contains(stderr, "in.jsonl:2");

            (exit, stdout, stderr) = CliRunner.Run($"logits --model \"{Path.Combine(work, "nowhere")}\" --input \"{input}\"");
            Assert.AreNotEqual(0, exit);
            Assert.AreEqual(string.Empty, stdout);
            StringAssert.Contains(stderr, "nowhere");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
