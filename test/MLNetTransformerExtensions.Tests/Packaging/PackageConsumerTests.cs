using System.Globalization;
using System.IO.Compression;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace MLNetTransformerExtensions.Tests.Packaging;

/// <summary>
/// Packs the library and uses it as an application would: a console app that references only our package from a local
/// feed (and, like an app that already uses ML.NET, a Microsoft.ML of its own), built with warnings as errors, fits the
/// default model offline and saves it. The native fix reaches it too.
/// </summary>
[TestClass]
public sealed partial class PackageConsumerTests
{
    private const string Program = """
        using Microsoft.ML;
        using Microsoft.ML.Data;
        using MLNetTransformerExtensions.MLNet;

        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromTextFile<Review>("train.tsv", hasHeader: true);
        var test = ml.Data.LoadFromTextFile<Review>("test.tsv", hasHeader: true);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.EncoderClassifier(
                modelPath: MLNetTransformerExtensions.Builtin.BuiltinModels.DefaultName, numberOfEpochs: 1, batchSize: 8, maximumLength: 32));
        var model = pipeline.Fit(train);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        ml.Model.Save(model, train.Schema, "model.zip");
        var loaded = ml.MulticlassClassification.Evaluate(ml.Model.Load("model.zip", out _).Transform(test));
        Console.WriteLine($"accuracy={metrics.MicroAccuracy:F4} reloaded={loaded.MicroAccuracy:F4} ml.net={System.Diagnostics.FileVersionInfo.GetVersionInfo(typeof(MLContext).Assembly.Location).ProductVersion}");
        Console.WriteLine($"fix={MLNetTransformerExtensions.Runtime.TorchRuntime.EnsureInitialized().Fix}");

        public sealed class Review
        {
            [LoadColumn(0)] public string Label { get; set; } = "";
            [LoadColumn(1)] public string Text { get; set; } = "";
        }
        """;

    [TestMethod]
    [TestCategory("Slow")]
    public void ThePackagesCarryWhatTheirPagesAndDebuggersNeed()
    {
        using (var zip = ZipFile.OpenRead(PackagePath("MLNetTransformerExtensions", "nupkg")))
        {
            var names = zip.Entries.Select(e => e.FullName).ToList();
            CollectionAssert.IsSubsetOf(new[] { "README.md", "NOTICE", "lib/net10.0/MLNetTransformerExtensions.dll", "lib/net10.0/MLNetTransformerExtensions.xml" }, names);
            Assert.IsFalse(names.Any(n => n.StartsWith("build", StringComparison.Ordinal)), "the package needs no build files: " + string.Join(", ", names));

            var nuspec = Nuspec(zip);
            var ns = nuspec.Root!.Name.Namespace;
            var metadata = nuspec.Root.Element(ns + "metadata")!;
            Assert.AreEqual("README.md", metadata.Element(ns + "readme")?.Value);
            StringAssert.StartsWith(metadata.Element(ns + "releaseNotes")?.Value, "## ", "release notes come from CHANGELOG.md's newest section");
            var dependencies = metadata.Descendants(ns + "dependency").ToDictionary(d => (string)d.Attribute("id")!, d => (string)d.Attribute("version")!);
            Assert.AreEqual(PackagedApp.Version, dependencies["MLNetTransformerExtensions.MiniLM"], "the library depends on its model package at its own version");
            Assert.AreEqual("[5.0.1, 7.0.0)", dependencies["Microsoft.ML"]);
            Assert.IsFalse(dependencies.Keys.Any(id => id.StartsWith("SentenceTransformers", StringComparison.Ordinal) || id.Contains("OnnxRuntime", StringComparison.Ordinal)),
                "no dependency may bring ONNX Runtime: " + string.Join(", ", dependencies.Keys));
        }

        using (var symbols = ZipFile.OpenRead(PackagePath("MLNetTransformerExtensions", "snupkg")))
        {
            CollectionAssert.Contains(symbols.Entries.Select(e => e.FullName).ToList(), "lib/net10.0/MLNetTransformerExtensions.pdb");
        }

        using (var model = ZipFile.OpenRead(PackagePath("MLNetTransformerExtensions.MiniLM", "nupkg")))
        {
            var names = model.Entries.Select(e => e.FullName).ToList();
            CollectionAssert.IsSubsetOf(new[] { "README.md", "NOTICE", "lib/net10.0/MLNetTransformerExtensions.MiniLM.dll" }, names);
            var metadata = Nuspec(model).Root!;
            var ns = metadata.Name.Namespace;
            Assert.AreEqual("Apache-2.0", metadata.Descendants(ns + "license").Single().Value, "the model package carries the model's licence");
            Assert.IsFalse(metadata.Descendants(ns + "dependency").Any(), "the model package depends on nothing");
        }
    }

    [TestMethod]
    [TestCategory("Slow")]
    [DataRow("5.0.1")]
    [DataRow("6.0.0")]
    public void AConsoleAppFitsTheDefaultModelOfflineWithTheMLNetItAlreadyUses(string mlNetVersion)
    {
        var dataset = Path.Combine(TestPaths.RepositoryRoot(), "datasets", "sentiment");
        var files = new Dictionary<string, string>
        {
            ["train.tsv"] = string.Join('\n', File.ReadLines(Path.Combine(dataset, "train.tsv")).Take(41)) + "\n",
            ["test.tsv"] = string.Join('\n', File.ReadLines(Path.Combine(dataset, "test.tsv")).Take(41)) + "\n",
        };
        using var app = PackagedApp.Build(Program, mlNetVersion, files);
        Assert.IsFalse(File.Exists(Path.Combine(app.Folder, "model.zip")));

        // Offline: any HTTP request fails at a closed local port; a model cache of its own, so the model is converted from
        // what restore brought, not taken from an earlier run's cache.
        var cache = Path.Combine(app.Folder, "cache");
        var run = app.Run(environment: new Dictionary<string, string>
        {
            ["HTTP_PROXY"] = "http://127.0.0.1:9",
            ["HTTPS_PROXY"] = "http://127.0.0.1:9",
            ["HF_HUB_OFFLINE"] = "1",
            ["XDG_CACHE_HOME"] = cache,
        });
        Assert.AreEqual(0, run.ExitCode, run.StdOut + run.StdErr);
        Console.WriteLine(run.StdOut);

        var printed = Printed().Match(run.StdOut);
        Assert.IsTrue(printed.Success, run.StdOut + run.StdErr);
        var accuracy = double.Parse(printed.Groups["accuracy"].Value, CultureInfo.InvariantCulture);
        Assert.IsTrue(accuracy is >= 0 and <= 1, run.StdOut);
        Assert.AreEqual(printed.Groups["accuracy"].Value, printed.Groups["reloaded"].Value, "the saved model scores as the fitted one");
        Assert.AreEqual(mlNetVersion, printed.Groups["mlnet"].Value, "the app runs on the Microsoft.ML it references");
        Assert.IsTrue(File.Exists(Path.Combine(app.Folder, "model.zip")));
        Assert.IsTrue(Directory.GetFiles(Path.Combine(cache, "MLNetTransformerExtensions", "models", "builtin", "all-MiniLM-L6-v2"), "model.safetensors", SearchOption.AllDirectories).Length == 1,
            "the default model was converted from the package into the app's cache");
        if (OperatingSystem.IsLinux())
        {
            StringAssert.Matches(run.StdOut, new Regex("fix=(Applied|NotNeeded)"));
        }
    }

    private static string PackagePath(string id, string extension)
    {
        var path = Path.Combine(PackagedApp.Feed, $"{id}.{PackagedApp.Version}.{extension}");
        Assert.IsTrue(File.Exists(path), $"dotnet pack wrote no {path}");
        return path;
    }

    private static XDocument Nuspec(ZipArchive package)
    {
        using var stream = package.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
        return XDocument.Load(stream);
    }

    [GeneratedRegex(@"accuracy=(?<accuracy>[0-9.]+) reloaded=(?<reloaded>[0-9.]+) ml\.net=(?<mlnet>[0-9.]+)")]
    private static partial Regex Printed();
}
