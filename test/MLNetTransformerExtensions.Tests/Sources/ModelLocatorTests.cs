using MLNetTransformerExtensions.Hub;
using MLNetTransformerExtensions.Sources;
using MLNetTransformerExtensions.Tests.Hub;

namespace MLNetTransformerExtensions.Tests.Sources;

[TestClass]
public sealed class ModelLocatorTests : HubTestContext
{
    [TestMethod]
    public void AnExistingLocalFolderWinsOverAHubIdOfTheSameSpelling()
    {
        using var hub = StartHub();
        var local = Path.Combine(Root, "work", "tiny", "bert");
        Directory.CreateDirectory(local);
        var previous = Environment.CurrentDirectory;
        Environment.CurrentDirectory = Path.Combine(Root, "work");
        try
        {
            Assert.AreEqual(Path.GetFullPath(local), ModelLocator.Resolve("tiny/bert", Options(hub)));
            Assert.IsEmpty(hub.Requests);

            Directory.Delete(local);
            Assert.AreEqual(SnapshotFolder, ModelLocator.Resolve("tiny/bert", Options(hub)), "without the folder the hub id is fetched");
        }
        finally
        {
            Environment.CurrentDirectory = previous;
        }
    }

    [TestMethod]
    public async Task AHubIdIsFetchedWithProgress()
    {
        using var hub = StartHub();
        var progress = new ProgressLog();

        var folder = await ModelLocator.ResolveAsync($"{HubStandIn.RepoId}@v1", Options(hub), progress);

        AssertSnapshotMatches(folder, FixtureFolder, CheckpointFiles);
        Assert.AreEqual(CheckpointFiles.Length, progress.Events.Count(e => e.IsCompleted));
    }

    [TestMethod]
    public void AMissingPathIsNamedAsAFolderNotAsAHubId()
    {
        var missing = Path.Combine(Root, "no", "such", "model");

        var error = Assert.ThrowsExactly<DirectoryNotFoundException>(() => ModelLocator.Resolve(missing, Options(null)));
        Assert.Contains(missing, error.Message);

        Assert.ThrowsExactly<DirectoryNotFoundException>(() => ModelLocator.Resolve("./model", Options(null)));
        var notAnId = Assert.ThrowsExactly<HubException>(() => ModelLocator.Resolve("my model", Options(null)));
        Assert.AreEqual(HubErrorKind.InvalidModelId, notAnId.Kind);
    }

    [TestMethod]
    public void AFileIsRefusedWithAdvice()
    {
        var file = Path.Combine(Root, "model.safetensors");
        File.WriteAllBytes(file, [1, 2, 3]);

        var error = Assert.ThrowsExactly<ArgumentException>(() => ModelLocator.Resolve(file, Options(null)));
        Assert.Contains("folder that holds config.json", error.Message);
    }
}
