using System.Globalization;
using System.IO.Compression;
using Microsoft.ML;
using MLNetTransformerExtensions.Export;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Onnx;
using MLNetTransformerExtensions.Tests.MLNet;
using MLNetTransformerExtensions.Tests.Training;

namespace MLNetTransformerExtensions.Tests.Packaging;

/// <summary>
/// The ONNX scoring package as an application uses it: a console app that references only
/// MLNetTransformerExtensions.Onnx from the local feed, built with warnings as errors, scores an exported folder through
/// ML.NET and prints what the test's own scorer computes.
/// </summary>
[TestClass]
public sealed class OnnxPackageConsumerTests
{
    private const string Program = """
        using System.Globalization;
        using Microsoft.ML;
        using MLNetTransformerExtensions.Onnx;

        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(File.ReadAllLines("texts.txt").Select(t => new Row { Text = t }));
        using var scorer = ml.Transforms.ScoreExportedTextClassifier("exported").Fit(data);
        foreach (var row in ml.Data.CreateEnumerable<Scored>(scorer.Transform(data), reuseRowObject: false))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"probability={row.Probability:R} predicted={row.PredictedLabel}"));
        }

        public sealed class Row
        {
            public string Text { get; set; } = "";
        }

        public sealed class Scored
        {
            public float Probability { get; set; }

            public bool PredictedLabel { get; set; }
        }
        """;

    [TestMethod]
    [TestCategory("Slow")]
    public void AConsoleAppScoresAnExportedFolderThroughTheOnnxPackage()
    {
        using (var zip = ZipFile.OpenRead(Path.Combine(PackagedApp.Feed, $"MLNetTransformerExtensions.Onnx.{PackagedApp.Version}.nupkg")))
        {
            CollectionAssert.IsSubsetOf(new[] { "README.md", "NOTICE", "lib/net10.0/MLNetTransformerExtensions.Onnx.dll" }, zip.Entries.Select(e => e.FullName).ToList());
            using var nuspec = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
            var dependencies = System.Xml.Linq.XDocument.Load(nuspec).Descendants().Where(e => e.Name.LocalName == "dependency")
                .ToDictionary(d => (string)d.Attribute("id")!, d => (string)d.Attribute("version")!);
            Assert.AreEqual(PackagedApp.Version, dependencies["MLNetTransformerExtensions"], "the ONNX package depends on the library at its own version");
            Assert.IsTrue(dependencies.ContainsKey("Microsoft.ML.OnnxRuntime"), "the ONNX package brings ONNX Runtime's CPU build");
        }

        var ml = new MLContext(seed: 1);
        var (texts, labels) = SyntheticReviews.Binary(12, seed: 5);
        var data = ml.Data.LoadFromEnumerable(texts.Select((t, i) => new TransformerClassifierCatalogTests.BinaryReview { Text = t, Label = labels[i] == 1 }));
        using var model = ml.BinaryClassification.Trainers.EncoderClassifier(new EncoderClassifierOptions
        {
            ModelPath = TestPaths.Fixtures("hf-tiny", "bert"),
            NumberOfEpochs = 0,
        }).Fit(data);
        using var app = PackagedApp.Build(Program, files: new Dictionary<string, string> { ["texts.txt"] = string.Join('\n', texts) + "\n" }, package: "MLNetTransformerExtensions.Onnx");
        var exported = ml.Model.ExportTextClassifier(model, Path.Combine(app.Folder, "exported"));
        using var scorer = ml.Transforms.ScoreExportedTextClassifier(exported.Folder).Fit(data);
        var expected = ml.Data.CreateEnumerable<MLNetTransformerExtensions.Tests.Export.ExportCatalogTests.BinaryScores>(scorer.Transform(data), reuseRowObject: false).ToArray();

        var run = app.Run();
        Assert.AreEqual(0, run.ExitCode, run.StdOut + run.StdErr);
        var printed = run.StdOut.Split('\n').Where(l => l.StartsWith("probability=", StringComparison.Ordinal)).ToArray();
        Assert.HasCount(expected.Length, printed, run.StdOut + run.StdErr);
        for (var row = 0; row < expected.Length; row++)
        {
            var fields = printed[row].Trim().Split(' ').Select(f => f.Split('=')[1]).ToArray();
            Assert.AreEqual(expected[row].Probability, float.Parse(fields[0], CultureInfo.InvariantCulture), 1e-6, $"row {row}");
            Assert.AreEqual(expected[row].PredictedLabel, bool.Parse(fields[1]), $"row {row}");
        }
    }
}
