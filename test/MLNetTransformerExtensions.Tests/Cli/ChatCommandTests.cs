using System.Text.Json;
using MLNetTransformerExtensions.Tests.Training.Chat;

namespace MLNetTransformerExtensions.Tests.Cli;

/// <summary>
/// <c>train --kind chat</c>, <c>evaluate</c> and <c>predict</c> against an OpenAI-compatible server the test starts on
/// 127.0.0.1, with faults injected: the metrics and usage in the <c>--json</c> line, the cache on a second run, and
/// the error a loaded model gives without an endpoint.
/// </summary>
[TestClass]
public sealed class ChatCommandTests
{
    private static readonly Dictionary<string, string> s_environment = new()
    {
        ["OPENAI_API_KEY"] = "sk-cli-test-secret",
        ["OPENAI_BASE_URL"] = "",
    };

    private static FakeReply Script(string text, int attempt) => text switch
    {
        _ when text.StartsWith("limited", StringComparison.Ordinal) && attempt == 0 => FakeReply.Status(429, retryAfter: "0"),
        _ when text.StartsWith("crashed", StringComparison.Ordinal) && attempt == 0 => FakeReply.Status(500),
        _ when text.StartsWith("garbled", StringComparison.Ordinal) && attempt == 0 => FakeReply.Malformed,
        _ when text.StartsWith("confused", StringComparison.Ordinal) => FakeReply.Content("{\"label\":\"mixed\"}"),
        _ when text.Contains("great", StringComparison.Ordinal) => FakeReply.Label("positive", "negative", 0.9),
        _ => FakeReply.Label("negative", "positive", 0.9),
    };

    private static JsonElement LastJsonLine(string stdout) =>
        JsonDocument.Parse(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement.Clone();

    [TestMethod]
    [TestCategory("Slow")]
    public void TrainEvaluateAndPredictWithAChatModelReportUsageRetriesCacheHitsAndUnparsedRows()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            using var server = new FakeChatServer(Script);
            File.WriteAllLines(Path.Combine(work, "train.tsv"), ["Label\tText", "positive\ta great film", "negative\ta dull film", "positive\tgreat fun", "negative\tboring"]);
            File.WriteAllLines(Path.Combine(work, "test.tsv"),
                ["Label\tText", "positive\tlimited but great", "negative\tcrashed and dull", "positive\tgarbled but great", "positive\tconfused", "positive\tso great", "negative\tawful"]);
            var chat = $"--endpoint {server.BaseUrl} --chat-model gpt-test --cache-dir cache";

            var (exit, stdout, stderr) = CliRunner.Run(
                $"train --kind chat {chat} --shots 1 --concurrency 2 --data train.tsv --test test.tsv --output model.zip --no-baseline --json", work, environment: s_environment);

            Assert.AreEqual(0, exit, stderr + stdout);
            var trained = LastJsonLine(stdout);
            Assert.AreEqual(6, trained.GetProperty("count").GetInt32());
            Assert.AreEqual(5.0 / 6, trained.GetProperty("accuracy").GetDouble(), 1e-9, "the unparsed row scores uniformly: its prediction is the first class");
            Assert.AreEqual(9, trained.GetProperty("requests").GetInt64(), "six rows and three retries");
            Assert.AreEqual(3, trained.GetProperty("retries").GetInt64());
            Assert.AreEqual(1, trained.GetProperty("unparsed").GetInt64());
            Assert.AreEqual(0, trained.GetProperty("cache_hits").GetInt64());
            Assert.AreEqual(30, trained.GetProperty("completion_tokens").GetInt64());
            Assert.IsTrue(trained.GetProperty("prompt_tokens").GetInt64() > 0);
            StringAssert.Contains(stdout, "Chat model usage");

            (exit, stdout, stderr) = CliRunner.Run($"evaluate --model model.zip --data test.tsv {chat} --json", work, environment: s_environment);

            Assert.AreEqual(0, exit, stderr + stdout);
            var evaluated = LastJsonLine(stdout);
            Assert.AreEqual(trained.GetProperty("accuracy").GetDouble(), evaluated.GetProperty("accuracy").GetDouble());
            Assert.AreEqual(trained.GetProperty("log_loss").GetDouble(), evaluated.GetProperty("log_loss").GetDouble());
            Assert.AreEqual(0, evaluated.GetProperty("requests").GetInt64(), "every reply comes from the cache");
            Assert.AreEqual(6, evaluated.GetProperty("cache_hits").GetInt64());
            Assert.AreEqual(9, server.Requests);

            (exit, _, stderr) = CliRunner.Run($"predict --model model.zip --input test.tsv --output predictions.tsv {chat}", work, environment: s_environment);
            Assert.AreEqual(0, exit, stderr);
            var predictions = File.ReadAllLines(Path.Combine(work, "predictions.tsv"));
            Assert.AreEqual("Label\tText\tPredictedLabel\tScore.negative\tScore.positive", predictions[0]);
            Assert.AreEqual("positive", predictions[5].Split('\t')[2]);

            (exit, _, stderr) = CliRunner.Run("evaluate --model model.zip --data test.tsv", work,
                environment: new Dictionary<string, string> { ["OPENAI_API_KEY"] = "", ["OPENAI_BASE_URL"] = "" });
            Assert.AreEqual(1, exit);
            StringAssert.Contains(stderr, "--endpoint");
            Assert.IsFalse(File.ReadAllText(Path.Combine(work, "model.zip"), System.Text.Encoding.Latin1).Contains("sk-cli-test-secret", StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
