using System.Globalization;
using System.Text.Json;
using MLNetTransformerExtensions.Tests.Training;

namespace MLNetTransformerExtensions.Tests.Cli;

/// <summary><c>evaluate</c> and <c>predict</c> with <c>--precision</c>: bf16 scores close to fp32, and bad values are refused.</summary>
[TestClass]
public sealed class PrecisionOptionTests
{
    private static readonly string[] Names = ["negative", "neutral", "positive"];

    private static JsonElement LastJsonLine(string stdout) =>
        JsonDocument.Parse(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement.Clone();

    private static double[][] Scores(string path) =>
        [.. File.ReadAllLines(path).Skip(1).Select(line => line.Split('\t')[^3..].Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray())];

    [TestMethod]
    [TestCategory("Slow")]
    public void EvaluateAndPredictScoreInEitherPrecision()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var (texts, labels) = SyntheticReviews.ThreeClasses(60, seed: 41);
            File.WriteAllLines(Path.Combine(work, "data.tsv"), ["Label\tText", .. texts.Select((t, i) => $"{Names[labels[i]]}\t{t}")]);
            var (exit, stdout, stderr) = CliRunner.Run(
                $"train --data data.tsv --model \"{TestPaths.Fixtures("hf-tiny", "roberta")}\" --epochs 0 --max-length 32 --output model.zip", work);
            Assert.AreEqual(0, exit, stderr + stdout);

            var results = new Dictionary<string, JsonElement>();
            foreach (var precision in new[] { "fp32", "bf16" })
            {
                (exit, stdout, stderr) = CliRunner.Run($"evaluate --model model.zip --data data.tsv --json --precision {precision}", work);
                Assert.AreEqual(0, exit, stderr);
                StringAssert.Contains(stdout, $"in {precision}.");
                results[precision] = LastJsonLine(stdout);
                Assert.AreEqual(precision, results[precision].GetProperty("precision").GetString());
                Assert.IsGreaterThan(0.0, results[precision].GetProperty("rows_per_second").GetDouble());

                (exit, _, stderr) = CliRunner.Run($"predict --model model.zip --input data.tsv --output {precision}.tsv --precision {precision}", work);
                Assert.AreEqual(0, exit, stderr);
            }

            // The untrained head is close to uniform, so log-loss is the sensitive metric; probabilities move by < 0.03.
            Assert.AreEqual(results["fp32"].GetProperty("log_loss").GetDouble(), results["bf16"].GetProperty("log_loss").GetDouble(), 0.03);
            var largest = Scores(Path.Combine(work, "fp32.tsv")).Zip(Scores(Path.Combine(work, "bf16.tsv")), (a, b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max()).Max();
            Assert.IsTrue(largest is > 0 and <= 0.03, $"max |Δp| between fp32 and bf16 predictions: {largest}");

            // Without --precision, the model's saved precision (fp32 from train) is used.
            (exit, stdout, stderr) = CliRunner.Run("evaluate --model model.zip --data data.tsv --json", work);
            Assert.AreEqual(0, exit, stderr);
            Assert.AreEqual("fp32", LastJsonLine(stdout).GetProperty("precision").GetString());

            (exit, _, stderr) = CliRunner.Run("evaluate --model model.zip --data data.tsv --precision fp16", work);
            Assert.AreNotEqual(0, exit);
            StringAssert.Contains(stderr, "fp16");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
