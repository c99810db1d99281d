using System.Text.Json;
using MLNetTransformerExtensions.Checkpoints;
using MLNetTransformerExtensions.Runtime;
using TorchSharp;

namespace MLNetTransformerExtensions.Tests.Checkpoints;

[TestClass]
public sealed class CheckpointFilesTests
{
    private string folder = "";

    [ClassInitialize]
    public static void LoadTorch(TestContext context) => TorchRuntime.EnsureInitialized();

    [TestInitialize]
    public void CreateFolder() => folder = Directory.CreateTempSubdirectory("checkpoint-files-tests-").FullName;

    [TestCleanup]
    public void DeleteFolder() => Directory.Delete(folder, recursive: true);

    private string In(string name) => Path.Combine(folder, name);

    private void WriteShard(string name, params (string Name, float[] Values)[] tensors)
    {
        using var scope = torch.NewDisposeScope();
        SafeTensorsFile.Write(In(name), tensors.Select(t => new KeyValuePair<string, torch.Tensor>(t.Name, torch.tensor(t.Values))));
    }

    private void WriteIndex(string name, Dictionary<string, string> weightMap) =>
        File.WriteAllText(In(name), JsonSerializer.Serialize(new { metadata = new { total_size = 0 }, weight_map = weightMap }));

    [TestMethod]
    public void FindWeightsPrefersSafeTensorsThenShardsThenPyTorch()
    {
        Assert.IsNull(CheckpointFiles.FindWeights(folder));
        File.WriteAllText(In("config.json"), "{}");
        Assert.IsNull(CheckpointFiles.FindWeights(folder), "a config-only folder has no weights");

        File.WriteAllBytes(In("pytorch_model-00001-of-00001.bin"), []);
        WriteIndex("pytorch_model.bin.index.json", new() { ["w"] = "pytorch_model-00001-of-00001.bin" });
        CollectionAssert.AreEqual(new[] { In("pytorch_model-00001-of-00001.bin") }, CheckpointFiles.FindWeights(folder));

        File.WriteAllBytes(In("pytorch_model.bin"), []);
        CollectionAssert.AreEqual(new[] { In("pytorch_model.bin") }, CheckpointFiles.FindWeights(folder));

        File.WriteAllBytes(In("model-00002-of-00002.safetensors"), []);
        File.WriteAllBytes(In("model-00001-of-00002.safetensors"), []);
        WriteIndex("model.safetensors.index.json", new()
        {
            ["b"] = "model-00002-of-00002.safetensors",
            ["a"] = "model-00001-of-00002.safetensors",
            ["c"] = "model-00002-of-00002.safetensors",
        });
        CollectionAssert.AreEqual(new[] { In("model-00001-of-00002.safetensors"), In("model-00002-of-00002.safetensors") }, CheckpointFiles.FindWeights(folder));

        File.WriteAllBytes(In("model.safetensors"), []);
        CollectionAssert.AreEqual(new[] { In("model.safetensors") }, CheckpointFiles.FindWeights(folder));
    }

    [TestMethod]
    public void ConfigOnlyOrMissingFolderIsReportedClearly()
    {
        File.WriteAllText(In("config.json"), "{}");
        var error = Assert.ThrowsExactly<CheckpointException>(() => CheckpointFiles.LoadStateDict(folder));
        StringAssert.Contains(error.Message, "no weights");
        StringAssert.Contains(error.Message, folder);

        Assert.ThrowsExactly<DirectoryNotFoundException>(() => CheckpointFiles.FindWeights(In("absent")));
    }

    [TestMethod]
    [DataRow("bert")]
    [DataRow("gpt2")]
    public void LoadsAFixtureFolder(string model)
    {
        using var scope = torch.NewDisposeScope();
        var expected = SafeTensorsFileTests.ExpectedShapes(model);

        var tensors = CheckpointFiles.LoadStateDict(SafeTensorsFileTests.Fixture(model));

        CollectionAssert.AreEquivalent(expected.Keys.ToList(), tensors.Keys.ToList());
        foreach (var (name, shape) in expected)
            CollectionAssert.AreEqual(shape, tensors[name].shape, name);
    }

    [TestMethod]
    public void LoadsEveryShardOfAShardedSafeTensorsCheckpoint()
    {
        WriteShard("model-00001-of-00002.safetensors", ("encoder.weight", [1f, 2f]), ("encoder.bias", [3f]));
        WriteShard("model-00002-of-00002.safetensors", ("classifier.weight", [4f, 5f, 6f]));
        WriteIndex("model.safetensors.index.json", new()
        {
            ["encoder.weight"] = "model-00001-of-00002.safetensors",
            ["encoder.bias"] = "model-00001-of-00002.safetensors",
            ["classifier.weight"] = "model-00002-of-00002.safetensors",
        });

        using var scope = torch.NewDisposeScope();
        var tensors = CheckpointFiles.LoadStateDict(folder);

        CollectionAssert.AreEquivalent(new[] { "encoder.weight", "encoder.bias", "classifier.weight" }, tensors.Keys.ToList());
        CollectionAssert.AreEqual(new[] { 4f, 5f, 6f }, tensors["classifier.weight"].data<float>().ToArray());
    }

    [TestMethod]
    public void LoadsEveryShardOfAShardedPyTorchCheckpoint()
    {
        new TorchCheckpointBuilder().Storage("0", new[] { 1f, 2f }).Tensor("encoder.weight", "0", "FloatStorage", 2, [2])
            .Save(In("pytorch_model-00001-of-00002.bin"));
        new TorchCheckpointBuilder().Storage("0", new long[] { 0, 1, 2 }).Tensor("embeddings.position_ids", "0", "LongStorage", 3, [1, 3])
            .Save(In("pytorch_model-00002-of-00002.bin"));
        WriteIndex("pytorch_model.bin.index.json", new()
        {
            ["encoder.weight"] = "pytorch_model-00001-of-00002.bin",
            ["embeddings.position_ids"] = "pytorch_model-00002-of-00002.bin",
        });

        using var scope = torch.NewDisposeScope();
        var tensors = CheckpointFiles.LoadStateDict(folder);

        CollectionAssert.AreEqual(new[] { 1f, 2f }, tensors["encoder.weight"].data<float>().ToArray());
        CollectionAssert.AreEqual(new long[] { 0, 1, 2 }, tensors["embeddings.position_ids"].data<long>().ToArray());
    }

    [TestMethod]
    [DataRow("../outside.safetensors", "not a file name in the model folder", DisplayName = "climbs out of the folder")]
    [DataRow("/tmp/outside.safetensors", "not a file name in the model folder", DisplayName = "absolute path")]
    [DataRow("sub/model.safetensors", "not a file name in the model folder", DisplayName = "sub-folder")]
    [DataRow("..", "not a file name in the model folder", DisplayName = "parent folder itself")]
    [DataRow("..\\\\outside.safetensors", "not a file name in the model folder", DisplayName = "Windows separator")]
    [DataRow("model-00009-of-00009.safetensors", "missing from the model folder", DisplayName = "missing shard")]
    public void IndexPointingOutsideTheFolderOrAtAMissingShardIsRefused(string shard, string problem)
    {
        string model = In("model");
        Directory.CreateDirectory(Path.Combine(model, "sub"));
        WriteShard("outside.safetensors", ("w", [1f]));
        File.Copy(In("outside.safetensors"), Path.Combine(model, "sub", "model.safetensors"));
        WriteShard(Path.Combine("model", "model-00001-of-00002.safetensors"), ("a", [1f]));
        WriteIndex(Path.Combine("model", "model.safetensors.index.json"), new() { ["a"] = "model-00001-of-00002.safetensors", ["w"] = shard });

        var error = Assert.ThrowsExactly<CheckpointException>(() => CheckpointFiles.LoadStateDict(model));

        Assert.AreEqual("w", error.TensorName);
        StringAssert.Contains(error.Message, "model.safetensors.index.json");
        StringAssert.Contains(error.Message, problem);
    }

    [TestMethod]
    public void IndexAndShardsThatDisagreeAreRefused()
    {
        WriteShard("model-00001-of-00002.safetensors", ("a", [1f]), ("b", [2f]));
        WriteShard("model-00002-of-00002.safetensors", ("b", [3f]));
        WriteIndex("model.safetensors.index.json", new() { ["a"] = "model-00001-of-00002.safetensors", ["b"] = "model-00002-of-00002.safetensors" });
        var twice = Assert.ThrowsExactly<CheckpointException>(() => CheckpointFiles.LoadStateDict(folder));
        Assert.AreEqual("b", twice.TensorName);
        StringAssert.Contains(twice.Message, "also in");

        WriteShard("model-00002-of-00002.safetensors", ("c", [3f]));
        var absent = Assert.ThrowsExactly<CheckpointException>(() => CheckpointFiles.LoadStateDict(folder));
        Assert.AreEqual("b", absent.TensorName);
        StringAssert.Contains(absent.Message, "does not hold it");
    }

    [TestMethod]
    [DataRow("not json", "not valid JSON")]
    [DataRow("[]", "no \"weight_map\"")]
    [DataRow("{\"weight_map\": []}", "no \"weight_map\"")]
    [DataRow("{\"weight_map\": {}}", "empty")]
    [DataRow("{\"weight_map\": {\"a\": 3}}", "not a shard file name")]
    [DataRow("{\"weight_map\": {\"a\": \"model.safetensors\", \"a\": \"model.safetensors\"}}", "twice")]
    public void DamagedIndexIsRefused(string index, string problem)
    {
        WriteShard("model.safetensors", ("a", [1f]));
        File.Move(In("model.safetensors"), In("shard.safetensors"));
        File.WriteAllText(In("model.safetensors.index.json"), index.Replace("model.safetensors", "shard.safetensors"));

        var error = Assert.ThrowsExactly<CheckpointException>(() => CheckpointFiles.FindWeights(folder));

        StringAssert.Contains(error.Message, In("model.safetensors.index.json"));
        StringAssert.Contains(error.Message, problem);
    }

    [TestMethod]
    public void AFailingShardLeavesNoTensorBehind()
    {
        WriteShard("model-00001-of-00002.safetensors", ("a", [1f, 2f]));
        File.WriteAllBytes(In("model-00002-of-00002.safetensors"), [1, 2, 3]);
        WriteIndex("model.safetensors.index.json", new() { ["a"] = "model-00001-of-00002.safetensors", ["b"] = "model-00002-of-00002.safetensors" });
        long live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;

        var error = Assert.ThrowsExactly<CheckpointException>(() => CheckpointFiles.LoadStateDict(folder));

        Assert.AreEqual(In("model-00002-of-00002.safetensors"), error.FilePath);
        Assert.AreEqual(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }
}
