using System.CommandLine;
using System.Globalization;
using Microsoft.ML;
using MLNetTransformerExtensions.Export;
using Spectre.Console;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary><c>export</c>: a model file's transformer classifier as an ONNX graph (float32 or int8) or a HuggingFace folder.</summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "A model file written by train.", Required = true };
        var output = new Option<string>("--output") { Description = "The folder to write (new or empty).", Required = true };
        var format = new Option<string>("--format") { Description = "onnx (model.onnx for ONNX Runtime, ApplyOnnxModel, Triton) or huggingface (a save_pretrained folder).", DefaultValueFactory = _ => "onnx" };
        format.AcceptOnlyFromAmong("onnx", "huggingface");
        var quantize = new Option<string?>("--quantize") { Description = "int8: dynamic int8 quantization of the linear layers (ONNX only)." };
        quantize.AcceptOnlyFromAmong("int8");
        var command = new Command("export", "Export a trained classifier for other runtimes: ONNX (optionally int8) or a HuggingFace folder.") { model, output, format, quantize };
        command.SetAction(parse => Run(parse.GetValue(model)!, parse.GetValue(output)!, parse.GetValue(format)!, parse.GetValue(quantize)));
        return command;
    }

    private static int Run(string modelPath, string outputPath, string format, string? quantize)
    {
        try
        {
            var ml = new MLContext(seed: 1);
            if (Directory.Exists(modelPath))
            {
                throw new CliException($"'{modelPath}' is a folder; export reads a model file written by train.");
            }

            var loaded = ModelZip.Load(ml, modelPath);
            if (loaded.Classifier is null)
            {
                throw new CliException($"'{modelPath}' holds one of ML.NET's classic text pipelines; export writes transformer classifiers (ML.NET's own ConvertToOnnx covers some classic pipelines).");
            }

            var options = new TextClassifierExportOptions
            {
                Format = format == "huggingface" ? TextClassifierExportFormat.HuggingFace : TextClassifierExportFormat.Onnx,
                QuantizeInt8 = quantize == "int8",
            };
            if (options.QuantizeInt8 && options.Format != TextClassifierExportFormat.Onnx)
            {
                throw new CliException("--quantize int8 applies to --format onnx; a HuggingFace folder keeps float32 weights.");
            }

            var exported = ml.Model.ExportTextClassifier(loaded.Model, outputPath, options);
            var table = new Table().AddColumn("File").AddColumn(new TableColumn("Bytes").RightAligned());
            foreach (var file in new DirectoryInfo(exported.Folder).EnumerateFiles().OrderBy(f => f.Name, StringComparer.Ordinal))
            {
                table.AddRow(Markup.Escape(file.Name), file.Length.ToString("N0", CultureInfo.InvariantCulture));
            }

            AnsiConsole.Write(table);
            var what = options.Format == TextClassifierExportFormat.Onnx ? (options.QuantizeInt8 ? "ONNX (int8)" : "ONNX (float32)") : "HuggingFace";
            AnsiConsole.MarkupLine(Markup.Escape($"Exported a {exported.Family} {exported.Task.ToString().ToLowerInvariant()} classifier of {exported.ClassNames.Count} classes as {what} to {exported.Folder}."));
            return 0;
        }
        catch (Exception e) when (e is CliException or IOException or InvalidDataException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
