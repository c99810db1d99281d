using System.Text.Json;
using MLNetTransformerExtensions.Tests.Training;

namespace MLNetTransformerExtensions.Tests.Cli;

/// <summary>The train → evaluate → predict contract of the CLI, run as separate processes.</summary>
[TestClass]
public sealed class TrainEvaluatePredictTests
{
    private static readonly string[] Names = ["negative", "neutral", "positive"];

    private static void WriteData(string path, (List<string> Texts, List<int> Labels) data, char separator = '\t')
    {
        string Quote(string v) => separator == ',' ? "\"" + v.Replace("\"", "\"\"") + "\"" : v;
        File.WriteAllLines(path, [$"Label{separator}Text", .. data.Texts.Select((t, i) => $"{Names[data.Labels[i]]}{separator}{Quote(t)}")]);
    }

    private static JsonElement LastJsonLine(string stdout)
    {
        var last = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1];
        return JsonDocument.Parse(last).RootElement.Clone();
    }

    [TestMethod]
    [TestCategory("Slow")]
    [DataRow("bert", ".tsv")]
    [DataRow("gpt2", ".csv")]
    public void TrainEvaluateAndPredictAgree(string family, string extension)
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var separator = extension == ".csv" ? ',' : '\t';
            WriteData(Path.Combine(work, "train" + extension), SyntheticReviews.ThreeClasses(240, seed: 31), separator);
            WriteData(Path.Combine(work, "test" + extension), SyntheticReviews.ThreeClasses(60, seed: 32), separator);
            var model = TestPaths.Fixtures("hf-tiny", family);
            var (exit, stdout, stderr) = CliRunner.Run(
                $"train --data train{extension} --test test{extension} --model \"{model}\" --epochs 12 --batch-size 16 --learning-rate 1e-3 --max-length 32 --output m/model.zip --json", work);
            Assert.AreEqual(0, exit, stderr + stdout);
            var trained = LastJsonLine(stdout);
            Assert.IsTrue(trained.GetProperty("accuracy").GetDouble() > 0.8, stdout);
            Assert.AreEqual(60, trained.GetProperty("count").GetInt32());
            Assert.IsTrue(File.Exists(Path.Combine(work, "m", "model.zip")));

            (exit, stdout, stderr) = CliRunner.Run($"evaluate --model m/model.zip --data test{extension} --json", work);
            Assert.AreEqual(0, exit, stderr);
            var evaluated = LastJsonLine(stdout);
            foreach (var metric in new[] { "accuracy", "macro_f1", "log_loss" })
            {
                Assert.AreEqual(trained.GetProperty(metric).GetDouble(), evaluated.GetProperty(metric).GetDouble(), $"{metric} differs between train and evaluate");
            }

            File.WriteAllLines(Path.Combine(work, "in" + extension), [$"Id{separator}Text", $"7{separator}what a wonderful evening at the cinema", $"8{separator}the movie was awful ."]);
            (exit, _, stderr) = CliRunner.Run($"predict --model m/model.zip --input in{extension} --output out{extension}", work);
            Assert.AreEqual(0, exit, stderr);
            var lines = File.ReadAllLines(Path.Combine(work, "out" + extension));
            Assert.AreEqual($"Id{separator}Text{separator}PredictedLabel{separator}Score.negative{separator}Score.neutral{separator}Score.positive", lines[0]);
            Assert.AreEqual(3, lines.Length);
            var first = lines[1].Split(separator);
            Assert.AreEqual("7", first[0]);
            Assert.AreEqual("positive", first[2]);
            Assert.AreEqual(1.0, first[3..].Sum(v => double.Parse(v, System.Globalization.CultureInfo.InvariantCulture)), 1e-5);
            StringAssert.StartsWith(lines[2], $"8{separator}the movie was awful .{separator}negative");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    [TestCategory("Slow")]
    [DataRow("setfit", "--iterations 2")]
    [DataRow("embedding", "")]
    public void SetFitAndTheLinearProbeTrainEvaluateAndPredict(string kind, string arguments)
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            // A few examples per class: what SetFit is for.
            WriteData(Path.Combine(work, "train.tsv"), SyntheticReviews.ThreeClasses(24, seed: 41));
            WriteData(Path.Combine(work, "test.tsv"), SyntheticReviews.ThreeClasses(30, seed: 42));
            var (exit, stdout, stderr) = CliRunner.Run($"train --data train.tsv --test test.tsv --kind {kind} {arguments} --output model.zip --json --no-baseline", work);
            Assert.AreEqual(0, exit, stderr + stdout);
            var trained = LastJsonLine(stdout);
            Assert.IsGreaterThan(0.6, trained.GetProperty("accuracy").GetDouble(), stdout);

            (exit, stdout, stderr) = CliRunner.Run("evaluate --model model.zip --data test.tsv --json", work);
            Assert.AreEqual(0, exit, stderr);
            Assert.AreEqual(trained.GetProperty("accuracy").GetDouble(), LastJsonLine(stdout).GetProperty("accuracy").GetDouble(), "the saved model scores as the trained one");

            File.WriteAllLines(Path.Combine(work, "in.tsv"), ["Text", "what a wonderful evening at the cinema"]);
            (exit, _, stderr) = CliRunner.Run("predict --model model.zip --input in.tsv --output out.tsv", work);
            Assert.AreEqual(0, exit, stderr);
            Assert.HasCount(2, File.ReadAllLines(Path.Combine(work, "out.tsv")));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    [TestCategory("Slow")]
    [DataRow("bart", "--kind seq2seq")]
    [DataRow("t5", "--kind seq2seq-prompt --template \"sst2 sentence: {text}\" --label-words \"negative=negative,neutral=neutral,positive=positive\"")]
    public void EncoderDecodersTrainEvaluateAndPredict(string family, string kind)
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            WriteData(Path.Combine(work, "train.tsv"), SyntheticReviews.ThreeClasses(48, seed: 33), '\t');
            WriteData(Path.Combine(work, "test.tsv"), SyntheticReviews.ThreeClasses(24, seed: 34), '\t');
            var model = TestPaths.Fixtures("hf-tiny-seq2seq", family);
            var (exit, stdout, stderr) = CliRunner.Run(
                $"train --data train.tsv --test test.tsv --model \"{model}\" {kind} --epochs 2 --batch-size 16 --learning-rate 1e-3 --max-length 32 --no-baseline --output m/model.zip --json", work);
            Assert.AreEqual(0, exit, stderr + stdout);
            var trained = LastJsonLine(stdout);
            Assert.AreEqual(24, trained.GetProperty("count").GetInt32());

            (exit, stdout, stderr) = CliRunner.Run("evaluate --model m/model.zip --data test.tsv --json", work);
            Assert.AreEqual(0, exit, stderr);
            Assert.AreEqual(trained.GetProperty("log_loss").GetDouble(), LastJsonLine(stdout).GetProperty("log_loss").GetDouble(), "train and evaluate agree");

            File.WriteAllLines(Path.Combine(work, "in.tsv"), ["Text", "what a wonderful evening at the cinema"]);
            (exit, _, stderr) = CliRunner.Run("predict --model m/model.zip --input in.tsv --output out.tsv", work);
            Assert.AreEqual(0, exit, stderr);
            Assert.AreEqual(2, File.ReadAllLines(Path.Combine(work, "out.tsv")).Length);

            (exit, _, stderr) = CliRunner.Run($"train --data train.tsv --model \"{TestPaths.Fixtures("hf-tiny-seq2seq", "t5")}\" --kind seq2seq --epochs 0 --no-baseline --output x.zip", work);
            Assert.AreNotEqual(0, exit);
            StringAssert.Contains(stderr, "--kind seq2seq-prompt");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void BadInputIsAClearErrorAndWritesNoModel()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var bert = TestPaths.Fixtures("hf-tiny", "bert");
            WriteData(Path.Combine(work, "train.tsv"), SyntheticReviews.ThreeClasses(30, seed: 33));
            File.WriteAllLines(Path.Combine(work, "one.tsv"), ["Label\tText", "a\tx", "a\ty"]);
            File.WriteAllLines(Path.Combine(work, "unseen.tsv"), ["Label\tText", "negative\tx", "surprised\ty"]);
            File.WriteAllLines(Path.Combine(work, "empty-label.tsv"), ["Label\tText", "negative\tx", "\ty"]);

            void Fails(string arguments, params string[] expected)
            {
                var (exit, _, stderr) = CliRunner.Run(arguments, work);
                Assert.AreNotEqual(0, exit, arguments);
                foreach (var e in expected)
                {
                    StringAssert.Contains(stderr, e, arguments);
                }
            }

            Fails($"train --data train.tsv --model \"{bert}\" --text-column Review --output a.zip", "'Review'", "Label, Text");
            Fails($"train --data one.tsv --model \"{bert}\" --output a.zip", "single class");
            Fails($"train --data empty-label.tsv --model \"{bert}\" --output a.zip", "row 2", "empty");
            Fails($"train --data train.tsv --model \"{TestPaths.Fixtures("hf-tiny", "gpt2")}\" --kind encoder --output a.zip", "decoder");
            // The library's error names ClassifierKind; the CLI answers with the --kind value that fits.
            Fails($"train --data train.tsv --model \"{TestPaths.Fixtures("hf-tiny", "gpt2")}\" --kind encoder-prompt --output a.zip", "decoder", "--kind prompt");
            Fails($"train --data train.tsv --test unseen.tsv --model \"{bert}\" --output a.zip", "unseen.tsv row 2", "surprised");
            Fails($"train --data missing.tsv --model \"{bert}\" --output a.zip", "missing.tsv");
            // Decoupled weight decay at this rate overflows the weights within a few steps.
            Fails($"train --data train.tsv --model \"{bert}\" --epochs 2 --batch-size 8 --learning-rate 1e10 --no-baseline --output a.zip",
                "Training diverged at step", "--learning-rate", "No model file was written");
            Assert.IsFalse(File.Exists(Path.Combine(work, "a.zip")), "no model file after a failed run");

            File.WriteAllText(Path.Combine(work, "broken.zip"), "not a zip");
            Fails("evaluate --model broken.zip --data train.tsv", "broken.zip");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
