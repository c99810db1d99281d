using System.Text.Json;
using Microsoft.ML;
using MLNetTransformerExtensions.MLNet;

namespace MLNetTransformerExtensions.Tests.Cli;

/// <summary>The <c>explain</c> command: one JSON line per record, and errors that name the class or line at fault.</summary>
[TestClass]
public sealed class ExplainCommandTests
{
    private sealed class Row
    {
        public string Text { get; set; } = string.Empty;

        public string Label { get; set; } = string.Empty;
    }

    private static void SaveTinyModel(string path)
    {
        var ml = new MLContext(seed: 1);
        var rows = ml.Data.LoadFromEnumerable(new[] { new Row { Text = "good fun", Label = "pos" }, new Row { Text = "dull and bad", Label = "neg" } });
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.EncoderClassifier(modelPath: TestPaths.Fixtures("hf-tiny", "bert"), numberOfEpochs: 0))
            .Fit(rows);
        ml.Model.Save(model, rows.Schema, path);
    }

    [TestMethod]
    public void EachRecordGetsTokensAttributionsAndClasses()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            SaveTinyModel(Path.Combine(work, "model.zip"));
            File.WriteAllLines(Path.Combine(work, "in.jsonl"), ["{\"text\": \"a good film\"}", "", "{\"text\": \"great\"}"]);
            var (exit, stdout, stderr) = CliRunner.Run("explain --model model.zip --input in.jsonl --class neg --steps 8", work);
            Assert.AreEqual(0, exit, stderr);
            var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.HasCount(2, lines);
            foreach (var line in lines)
            {
                using var json = JsonDocument.Parse(line);
                var root = json.RootElement;
                Assert.AreEqual(root.GetProperty("tokens").GetArrayLength(), root.GetProperty("attributions").GetArrayLength());
                Assert.AreEqual("[CLS]", root.GetProperty("tokens")[0].GetString());
                Assert.AreEqual("neg", root.GetProperty("class").GetString());
                CollectionAssert.Contains(new[] { "pos", "neg" }, root.GetProperty("predicted").GetString());
                Assert.AreEqual("ig", root.GetProperty("method").GetString());
                Assert.AreEqual(8, root.GetProperty("steps").GetInt32());
                var sum = root.GetProperty("attributions").EnumerateArray().Sum(a => a.GetDouble());
                var difference = root.GetProperty("score").GetDouble() - root.GetProperty("baseline_score").GetDouble();
                Assert.AreEqual(sum - difference, root.GetProperty("completeness_error").GetDouble(), 1e-9);
            }

            (exit, stdout, stderr) = CliRunner.Run("explain --model model.zip --input in.jsonl --class neutral", work);
            Assert.AreEqual(1, exit);
            Assert.AreEqual(string.Empty, stdout, "nothing is written before the input is validated");
            StringAssert.Contains(stderr, "--class 'neutral' is not a class of this model; its classes are 'pos', 'neg'");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
