using System.Globalization;
using System.Text.Json;
using MLNetTransformerExtensions.Tests.Training;

namespace MLNetTransformerExtensions.Tests.Cli;

/// <summary><c>export</c> to ONNX (float32, int8) and HuggingFace, and <c>evaluate</c>/<c>predict</c> on the exported folder.</summary>
[TestClass]
public sealed class ExportCommandTests
{
    private static readonly string[] Names = ["negative", "neutral", "positive"];

    private static double[][] Scores(string path) =>
        [.. File.ReadAllLines(path).Skip(1).Select(line => line.Split('\t')[^3..].Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray())];

    [TestMethod]
    [TestCategory("Slow")]
    public void AnExportedFolderEvaluatesAndPredictsLikeTheModelFile()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var (texts, labels) = SyntheticReviews.ThreeClasses(40, seed: 43);
            File.WriteAllLines(Path.Combine(work, "data.tsv"), ["Label\tText", .. texts.Select((t, i) => $"{Names[labels[i]]}\t{t}")]);
            var (exit, stdout, stderr) = CliRunner.Run(
                $"train --data data.tsv --model \"{TestPaths.Fixtures("hf-tiny", "bert")}\" --epochs 0 --max-length 32 --output model.zip", work);
            Assert.AreEqual(0, exit, stderr + stdout);

            (exit, stdout, stderr) = CliRunner.Run("export --model model.zip --output onnx", work);
            Assert.AreEqual(0, exit, stderr + stdout);
            StringAssert.Contains(stdout, "model.onnx");
            (exit, _, stderr) = CliRunner.Run("export --model model.zip --output int8 --quantize int8", work);
            Assert.AreEqual(0, exit, stderr);
            Assert.IsLessThan(new FileInfo(Path.Combine(work, "onnx", "model.onnx")).Length, new FileInfo(Path.Combine(work, "int8", "model.onnx")).Length);
            (exit, _, stderr) = CliRunner.Run("export --model model.zip --output hf --format huggingface", work);
            Assert.AreEqual(0, exit, stderr);
            Assert.IsTrue(File.Exists(Path.Combine(work, "hf", "model.safetensors")));
            (exit, _, stderr) = CliRunner.Run("export --model model.zip --output hf2 --format huggingface --quantize int8", work);
            Assert.AreNotEqual(0, exit);
            StringAssert.Contains(stderr, "--format onnx");

            (exit, _, stderr) = CliRunner.Run("predict --model model.zip --input data.tsv --output torch.tsv", work);
            Assert.AreEqual(0, exit, stderr);
            (exit, _, stderr) = CliRunner.Run("predict --model onnx --input data.tsv --output onnx.tsv", work);
            Assert.AreEqual(0, exit, stderr);
            var largest = Scores(Path.Combine(work, "torch.tsv")).Zip(Scores(Path.Combine(work, "onnx.tsv")), (a, b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max()).Max();
            Assert.IsLessThanOrEqualTo(1e-4, largest, "ONNX Runtime predictions match TorchSharp's");
            CollectionAssert.AreEqual(
                File.ReadAllLines(Path.Combine(work, "torch.tsv")).Select(l => l.Split('\t')[2]).ToArray(),
                File.ReadAllLines(Path.Combine(work, "onnx.tsv")).Select(l => l.Split('\t')[2]).ToArray(),
                "the predicted labels (class names) are the same");

            (exit, stdout, stderr) = CliRunner.Run("evaluate --model int8 --data data.tsv --json", work);
            Assert.AreEqual(0, exit, stderr);
            var metrics = JsonDocument.Parse(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement;
            Assert.IsGreaterThan(0.0, metrics.GetProperty("rows_per_second").GetDouble());

            (exit, _, stderr) = CliRunner.Run("evaluate --model hf --data data.tsv", work);
            Assert.AreNotEqual(0, exit);
            StringAssert.Contains(stderr, "HuggingFace export");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
