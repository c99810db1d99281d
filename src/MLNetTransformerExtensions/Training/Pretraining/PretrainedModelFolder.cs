using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MLNetTransformerExtensions.Checkpoints;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tokenization;

namespace MLNetTransformerExtensions.Training.Pretraining;

/// <summary>
/// Writes a language model as the folder HuggingFace's <c>save_pretrained</c> writes: config.json naming the LM class,
/// model.safetensors with the head's own weights (the decoders tied to the word embeddings are left out, as
/// HuggingFace leaves them out), and the tokenizer files.
/// </summary>
internal static class PretrainedModelFolder
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>HuggingFace's class for the family's language model, for <c>architectures</c>.</summary>
    public static string Architecture(ModelFamily family) => family switch
    {
        ModelFamily.Bert => "BertForMaskedLM",
        ModelFamily.Roberta => "RobertaForMaskedLM",
        ModelFamily.DistilBert => "DistilBertForMaskedLM",
        _ => "GPT2LMHeadModel",
    };

    /// <summary>The family as its authors write it.</summary>
    public static string DisplayName(ModelFamily family) => family switch
    {
        ModelFamily.Bert => "BERT",
        ModelFamily.Roberta => "RoBERTa",
        ModelFamily.DistilBert => "DistilBERT",
        _ => "GPT-2",
    };

    /// <summary>The config JSON with <c>architectures</c> naming the language-model class.</summary>
    public static JsonObject ConfigJson(TransformerConfig config)
    {
        var json = (JsonObject)config.Json.DeepClone();
        json["architectures"] = new JsonArray(Architecture(config.Family));
        return json;
    }

    /// <summary>
    /// Writes config.json, model.safetensors and the tokenizer files. The tokenizer's <c>model_max_length</c> is capped
    /// at the model's position table, so HuggingFace's tokenizer truncates where the model must.
    /// </summary>
    public static void WriteModel(string folder, LanguageModel model, TransformerTokenizer tokenizer, JsonObject config)
    {
        Directory.CreateDirectory(folder);
        SafeTensorsFile.Write(Path.Combine(folder, CheckpointFiles.SafeTensorsName), model.state_dict(), new Dictionary<string, string> { ["format"] = "pt" });
        tokenizer.SaveTo(folder);
        CapModelMaxLength(folder, PositionLimit(model.Config));
        WriteAtomically(Path.Combine(folder, "config.json"), config.ToJsonString(Indented) + "\n");
    }

    /// <summary>
    /// Writes a text file by rename, so a reader never sees half of it, and a failed write (a full disk) leaves the
    /// previous file and no temporary one.
    /// </summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="text">Its content, as UTF-8 without a byte-order mark.</param>
    /// <param name="createTemporary">Opens the temporary file; tests make it fail part-way.</param>
    public static void WriteAtomically(string path, string text, Func<string, Stream>? createTemporary = null) =>
        AtomicFile.WriteAllBytes(path, Encoding.UTF8.GetBytes(text), createTemporary);

    /// <summary>The longest input the position table allows (RoBERTa's positions start after its padding index).</summary>
    public static int PositionLimit(TransformerConfig config) =>
        config.Family == ModelFamily.Roberta ? config.MaxPositions - (config.PadTokenId ?? 1) - 1 : config.MaxPositions;

    private static void CapModelMaxLength(string folder, int limit)
    {
        var path = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(path) || JsonNode.Parse(File.ReadAllText(path)) is not JsonObject json)
        {
            return;
        }

        var current = json["model_max_length"] is JsonValue value && value.TryGetValue<double>(out var number) ? number : double.MaxValue;
        if (current > limit)
        {
            json["model_max_length"] = limit;
            WriteAtomically(path, json.ToJsonString(Indented) + "\n");
        }
    }
}
