using System.Globalization;

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>
/// A model saved by an application that references the packed library (and the ordinary Microsoft.ML)
/// loads in another process: ML.NET finds the loader from the assembly name in the zip, and the
/// classifier's kind from the application's own assembly.
/// </summary>
[TestClass]
public sealed class PackagedModelProcessTests
{
    [TestMethod]
    [TestCategory("Slow")]
    public void AModelSavedInOneProcessLoadsInAnother()
    {
        using var app = Packaging.PackagedApp.Build(ConsumerProgram);
        var model = Path.Combine(app.Folder, "model.zip");
        var train = app.Run($"train \"{model}\"");
        Assert.AreEqual(0, train.ExitCode, train.StdOut + train.StdErr);
        var load = app.Run($"load \"{model}\"");
        Assert.AreEqual(0, load.ExitCode, load.StdOut + load.StdErr);

        StringAssert.Contains(train.StdOut, "predictions: cat dog cat bird");
        Assert.AreEqual(train.StdOut.Trim(), load.StdOut.Trim(), "the loaded model must score exactly as the trained one");
    }

    // A keyword classifier of the application's own, registered as a kind in the application's assembly.
    private const string ConsumerProgram = """
        using System.Globalization;
        using Microsoft.ML;
        using Microsoft.ML.Data;
        using MLNetTransformerExtensions.MLNet;
        using MLNetTransformerExtensions.Training;

        [assembly: TextClassificationModelFormat("consumer-keyword", typeof(KeywordLoader))]

        var path = args[1];
        var ml = new MLContext(seed: 1);
        var rows = new[] { ("a cat sat", "cat"), ("the dog barked", "dog"), ("a bird sang", "bird"), ("my cat slept", "cat") }
            .Select(r => new Row { Text = r.Item1, Label = r.Item2 }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        ITransformer model;
        if (args[0] == "train")
        {
            var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
                .Append(new TextClassificationEstimator(ml, TextClassificationTask.Multiclass, new TextClassificationOptions(), new KeywordTrainer(), "consumer-keyword"))
                .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
            model = pipeline.Fit(data);
            ml.Model.Save(model, data.Schema, path);
        }
        else
        {
            model = ml.Model.Load(path, out _);
        }

        var scored = model.Transform(ml.Data.LoadFromEnumerable(new[] { "cat food", "dog toy", "big cat", "bird seed" }.Select(t => new Row { Text = t })));
        Console.WriteLine("predictions: " + string.Join(" ", scored.GetColumn<string>("PredictedLabel")));
        Console.WriteLine("scores: " + string.Join(" ", scored.GetColumn<float[]>("Score").SelectMany(s => s).Select(s => s.ToString("R", CultureInfo.InvariantCulture))));
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(data));
        Console.WriteLine("accuracy: " + metrics.MicroAccuracy.ToString(CultureInfo.InvariantCulture));

        public sealed class Row
        {
            public string Text { get; set; } = "";
            public string Label { get; set; } = "";
        }

        public sealed class KeywordClassifier(string[] classNames) : ITextClassificationModel
        {
            public int ClassCount => classNames.Length;

            public float[][] PredictProbabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts) =>
                texts.Select(text =>
                {
                    var hits = classNames.Select(c => text.Contains(c) ? 8f : 1f).ToArray();
                    return hits.Select(h => h / hits.Sum()).ToArray();
                }).ToArray();

            public void SaveTo(string folder) => File.WriteAllLines(Path.Combine(folder, "classes.txt"), classNames);

            public void Dispose()
            {
            }
        }

        public sealed class KeywordTrainer : ITextClassificationTrainer
        {
            public ITextClassificationModel Train(LabeledTexts training, LabeledTexts? validation, IReadOnlyList<string> classNames, TextClassificationTrainingContext context) =>
                new KeywordClassifier(classNames.ToArray());
        }

        public sealed class KeywordLoader : ITextClassificationModelLoader
        {
            public ITextClassificationModel Load(string folder) => new KeywordClassifier(File.ReadAllLines(Path.Combine(folder, "classes.txt")));
        }
        """;
}
