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
