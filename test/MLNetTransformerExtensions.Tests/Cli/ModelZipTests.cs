using Microsoft.ML;
using MLNetTransformerExtensions.Cli.Commands;
using static MLNetTransformerExtensions.Tests.MLNet.TextClassificationTestData;

namespace MLNetTransformerExtensions.Tests.Cli;

/// <summary>
/// The model file that <c>train --output</c> and <c>experiment --output</c> write (ModelZip.Save) is either complete or
/// absent: a save that fails part-way leaves the previous file byte for byte, and no temporary file.
/// </summary>
[TestClass]
public sealed class ModelZipTests
{
    private string folder = string.Empty;

    [TestInitialize]
    public void CreateFolder() => folder = TestPaths.NewTempDirectory();

    [TestCleanup]
    public void DeleteFolder() => Directory.Delete(folder, recursive: true);

    [TestMethod]
    public void ASaveThatFailsPartWayLeavesThePreviousModelFileAndNoTemporaryFile()
    {
        var (ml, model, schema) = SmallPipeline();
        var path = Path.Combine(folder, "model.zip");
        ModelZip.Save(ml, model, schema, path);
        var before = File.ReadAllBytes(path);
        Assert.IsGreaterThan(200, before.Length);

        Assert.ThrowsExactly<IOException>(() => ModelZip.Save(ml, model, schema, path, FaultInjection.DiskFullAfter(200)));

        CollectionAssert.AreEqual(before, File.ReadAllBytes(path));
        CollectionAssert.AreEqual(new[] { "model.zip" }, FaultInjection.FilesIn(folder));
        Assert.IsNotNull(ml.Model.Load(path, out _), "the previous file still loads");

        var fresh = Path.Combine(folder, "fresh.zip");
        Assert.ThrowsExactly<IOException>(() => ModelZip.Save(ml, model, schema, fresh, FaultInjection.DiskFullAfter(200)));
        CollectionAssert.AreEqual(new[] { "model.zip" }, FaultInjection.FilesIn(folder), "a failed first save leaves nothing");
    }

    [TestMethod]
    public void OnAFullDiskTheModelFileStaysWholeOrAbsent()
    {
        using var disk = SmallFileSystem.TryMount(kilobytes: 512, out var reason);
        if (disk is null)
        {
            Assert.Inconclusive(reason);
            return;
        }

        var (ml, model, schema) = SmallPipeline();
        var path = Path.Combine(disk.Folder, "model.zip");
        ModelZip.Save(ml, model, schema, path);
        var before = File.ReadAllBytes(path);

        disk.Fill();
        Assert.ThrowsExactly<IOException>(() => ModelZip.Save(ml, model, schema, path));
        Assert.ThrowsExactly<IOException>(() => ModelZip.Save(ml, model, schema, Path.Combine(disk.Folder, "other.zip")));

        CollectionAssert.AreEqual(before, File.ReadAllBytes(path));
        CollectionAssert.AreEqual(new[] { "filler", "model.zip" }, FaultInjection.FilesIn(disk.Folder));
    }

    private static (MLContext Ml, ITransformer Model, DataViewSchema Schema) SmallPipeline()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TopicRows(30));
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.Text.FeaturizeText("Features", "Text"))
            .Fit(data);
        return (ml, model, data.Schema);
    }
}
