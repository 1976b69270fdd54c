// Images uploaded into a course (POST /api/docs/<id>/images, the file as the body): from the
// toolbar's « Image » button, a paste or a drop. The server checks the type and the size and
// answers the image's address in this course, served under the course's own access rules.
import { ApiError, apiUpload } from '../api.js';

export const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];

export async function uploadImage(docId, file) {
  if (!IMAGE_TYPES.includes(file.type)) {
    throw new ApiError(415, 'unsupported_media_type', 'Image PNG, JPEG, WebP ou GIF attendue.');
  }
  const data = await apiUpload(`/api/docs/${encodeURIComponent(docId)}/images`, file, file.type);
  return data.src;
}

/** The image files of a paste or a drop (DataTransfer), if any. */
export function imageFiles(transfer) {
  return [...(transfer?.files ?? [])].filter((f) => IMAGE_TYPES.includes(f.type));
}

/** Upload each file and insert it where the caret is; errors go to `onError`. */
export async function insertImages(editor, docId, files, onError) {
  for (const file of files) {
    try {
      const src = await uploadImage(docId, file);
      editor.chain().focus().setImage({ src, alt: file.name.replace(/\.[a-z]+$/i, '') }).run();
    } catch (err) { onError(err.message); }
  }
}
