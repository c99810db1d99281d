using System.Text.Json;
using MLNetTransformerExtensions.Tests.Training;

namespace MLNetTransformerExtensions.Tests.Cli;

/// <summary>The experiment command's contract: its JSON line, its model file (read by evaluate in a fresh process), and its refusals.</summary>
[TestClass]
public sealed class ExperimentCommandTests
{
    private static readonly string[] Names = ["negative", "neutral", "positive"];

    private static void WriteData(string path, (List<string> Texts, List<int> Labels) data) =>
        File.WriteAllLines(path, ["Label\tText", .. data.Texts.Select((t, i) => $"{Names[data.Labels[i]]}\t{t}")]);

    private static JsonElement LastJsonLine(string stdout) =>
        JsonDocument.Parse(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement.Clone();

    [TestMethod]
    [TestCategory("Slow")]
    public void TheJsonLineDescribesEveryTrialAndTheTestMetricsMatchEvaluate()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            WriteData(Path.Combine(work, "train.tsv"), SyntheticReviews.ThreeClasses(90, seed: 41));
            WriteData(Path.Combine(work, "dev.tsv"), SyntheticReviews.ThreeClasses(30, seed: 42));
            WriteData(Path.Combine(work, "test.tsv"), SyntheticReviews.ThreeClasses(30, seed: 43));
            var bert = TestPaths.Fixtures("hf-tiny", "bert");
            var (exit, stdout, stderr) = CliRunner.Run(
                $"experiment --data train.tsv --validation dev.tsv --test test.tsv --models \"{bert}\" --max-trials 4 --metric macro-f1 --output m/best.zip --json", work);
            Assert.AreEqual(0, exit, stderr + stdout);
            var json = LastJsonLine(stdout);

            var trials = json.GetProperty("trials").EnumerateArray().ToList();
            Assert.HasCount(4, trials);
            CollectionAssert.AreEqual(
                new[] { "SdcaMaximumEntropy", "LbfgsMaximumEntropy", "LightGbm", $"encoder-head {bert}" },
                trials.Select(t => t.GetProperty("candidate").GetString()).ToArray());
            foreach (var trial in trials)
            {
                Assert.AreEqual(JsonValueKind.Object, trial.GetProperty("hyperparameters").ValueKind);
                Assert.IsGreaterThanOrEqualTo(0.0, trial.GetProperty("seconds").GetDouble());
                var status = trial.GetProperty("status").GetString();
                CollectionAssert.Contains(new[] { "completed", "failed", "cancelled" }, status);
                Assert.AreEqual(status == "completed", trial.GetProperty("metric").ValueKind == JsonValueKind.Number);
                Assert.AreEqual(status == "completed", trial.GetProperty("error").ValueKind == JsonValueKind.Null);
            }

            Assert.AreEqual(1e-4, trials[3].GetProperty("hyperparameters").GetProperty("learning_rate").GetDouble());
            var best = json.GetProperty("best");
            var bestMetric = best.GetProperty("metric").GetDouble();
            Assert.AreEqual(trials.Where(t => t.GetProperty("status").GetString() == "completed").Max(t => t.GetProperty("metric").GetDouble()), bestMetric);
            Assert.IsTrue(trials.Any(t => t.GetProperty("candidate").GetString() == best.GetProperty("candidate").GetString()));
            Assert.AreEqual(JsonValueKind.Object, best.GetProperty("hyperparameters").ValueKind);

            var test = json.GetProperty("test");
            Assert.AreEqual(30, test.GetProperty("count").GetInt32());
            Assert.IsTrue(File.Exists(Path.Combine(work, "m", "best.zip")));
            Assert.HasCount(1, Directory.GetFiles(Path.Combine(work, "m")), "only the model file: no temporary file is left");

            (exit, stdout, stderr) = CliRunner.Run("evaluate --model m/best.zip --data test.tsv --json", work);
            Assert.AreEqual(0, exit, stderr);
            var evaluated = LastJsonLine(stdout);
            foreach (var metric in new[] { "accuracy", "macro_f1", "log_loss" })
            {
                Assert.AreEqual(test.GetProperty(metric).GetDouble(), evaluated.GetProperty(metric).GetDouble(), $"{metric} differs between experiment and evaluate");
            }

            Assert.AreEqual(30, evaluated.GetProperty("count").GetInt32());
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    [DataRow("--models builtin:no-such-model", "builtin:no-such-model")]
    [DataRow("--models ./no/such/folder", "./no/such/folder")]
    [DataRow("--models \"bad id with spaces\"", "bad id with spaces")]
    [DataRow("--time 10x", "--time '10x'")]
    [DataRow("--folds 3 --validation train.tsv", "--validation or --folds")]
    public void BadArgumentsAreRefusedBeforeAnythingTrains(string arguments, string named)
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            WriteData(Path.Combine(work, "train.tsv"), SyntheticReviews.ThreeClasses(30, seed: 44));
            var (exit, stdout, stderr) = CliRunner.Run($"experiment --data train.tsv {arguments} --output best.zip --json", work);
            Assert.AreEqual(1, exit, stdout + stderr);
            StringAssert.Contains(stderr, named);
            Assert.DoesNotContain("started", stdout, "nothing trained");
            Assert.IsFalse(File.Exists(Path.Combine(work, "best.zip")), "no model file after a refused run");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
